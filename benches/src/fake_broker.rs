//! A fake AMQP 0-9-1 broker for client benchmarks: just enough of RabbitMQ to measure a
//! client's own ceiling without a real broker's cost in the way.
//!
//! It runs on its own OS thread (named `fake-broker`) with its own current-thread tokio
//! runtime, so its CPU time is separable from the client's. Every connection:
//! - performs the handshake (start, tune, open) and answers the synchronous methods a
//!   client needs (channel open/close, qos, queue declare/delete/purge/bind, exchange
//!   declare, consume, cancel, confirm.select, flow);
//! - for each `basic.consume`, streams up to [`Config::deliveries`] pre-encoded
//!   basic.deliver + content header + body frames, as many as the channel's prefetch
//!   window allows (the delivery tag is patched into a template, nothing else is encoded),
//!   and counts the acks it gets back;
//! - counts `basic.publish` methods and, on channels in confirm mode, answers each read
//!   batch with one `basic.ack(multiple = true)` covering every publish seen so far.
//!
//! The frame codec here is written by hand on purpose: it does not share code with the
//! client it measures, and it only looks at the fields it needs.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
/// frame_max offered in connection.tune.
const FRAME_MAX: u32 = 131_072;
/// Deliveries in flight on a channel without a prefetch limit (qos 0 or no-ack).
const UNLIMITED_WINDOW: u64 = 4096;
/// Stop filling the write buffer beyond this many bytes.
const OUT_HIGH_WATER: usize = 256 * 1024;

/// What the broker does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Deliveries streamed per `basic.consume` (`u64::MAX` = forever).
    pub deliveries: u64,
    /// Body bytes of each delivery.
    pub body_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            deliveries: u64::MAX,
            body_size: 256,
        }
    }
}

/// Counters over all connections, updated as frames are handled.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages delivered (basic.deliver sent).
    pub delivered: AtomicU64,
    /// Deliveries settled by basic.ack / nack / reject (multiple expanded).
    pub settled: AtomicU64,
    /// basic.ack / nack / reject frames received.
    pub settle_frames: AtomicU64,
    /// basic.publish methods received.
    pub published: AtomicU64,
    /// Publishes covered by the confirms sent.
    pub confirmed: AtomicU64,
    /// basic.ack frames sent as confirms.
    pub confirm_frames: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
}

/// A running fake broker. It lives until the process exits.
pub struct FakeBroker {
    /// Where it listens (127.0.0.1, an ephemeral port).
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<Stats>,
    /// Kernel thread id of the broker thread (for `/proc/self/task/<tid>/schedstat`).
    pub tid: u32,
}

impl FakeBroker {
    /// Starts the broker thread and waits until it listens.
    pub fn start(config: Config) -> io::Result<FakeBroker> {
        let stats = Arc::new(Stats::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread_stats = stats.clone();
        std::thread::Builder::new().name("fake-broker".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
                Ok(rt) => rt,
                Err(e) => return drop(tx.send(Err(e))),
            };
            rt.block_on(async move {
                let listener = match TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => return drop(tx.send(Err(e))),
                };
                let addr = listener.local_addr().expect("bound listener has an address");
                let _ = tx.send(Ok((addr, current_tid())));
                let config = Arc::new(config);
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    thread_stats.connections.fetch_add(1, Relaxed);
                    let (config, stats) = (config.clone(), thread_stats.clone());
                    tokio::spawn(async move {
                        if let Err(e) = serve(sock, &config, &stats).await {
                            if e.kind() != io::ErrorKind::ConnectionReset && e.kind() != io::ErrorKind::BrokenPipe {
                                eprintln!("fake broker: connection ended: {e}");
                            }
                        }
                    });
                }
            });
        })?;
        let (addr, tid) = rx.recv().map_err(|_| io::Error::other("fake broker thread died"))??;
        Ok(FakeBroker { addr, stats, tid })
    }

    /// The AMQP URI to connect to.
    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// CPU nanoseconds used by the broker thread so far.
    pub fn cpu_ns(&self) -> u64 {
        thread_cpu_ns(self.tid).unwrap_or(0)
    }
}

/// Kernel thread id of the calling thread, from `/proc/thread-self` (Linux); 0 elsewhere.
pub fn current_tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// CPU time of one thread of this process in nanoseconds (`/proc/self/task/<tid>/schedstat`,
/// first field: time spent running).
pub fn thread_cpu_ns(tid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    s.split_ascii_whitespace().next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// One connection.

#[derive(Default)]
struct Chan {
    prefetch: u16,
    confirm: bool,
    /// basic.publish methods seen on this channel (= the last publish sequence number).
    published: u64,
    /// Highest sequence number confirmed so far.
    confirmed: u64,
    consumer: Option<Consumer>,
}

struct Consumer {
    /// Pre-encoded deliver + header + body; the delivery tag sits at `tag_at`.
    template: Vec<u8>,
    tag_at: usize,
    no_ack: bool,
    remaining: u64,
    /// Last delivery tag sent.
    next_tag: u64,
    /// Tags settled individually or by `multiple`, for the window: `settled[tag % RING]`.
    settled: Vec<bool>,
    /// Every tag up to here is settled.
    low: u64,
    /// Number of settled tags (<= next_tag).
    settled_count: u64,
}

const RING: u64 = 1 << 16;

impl Consumer {
    fn window(&self, prefetch: u16) -> u64 {
        if self.no_ack || prefetch == 0 {
            UNLIMITED_WINDOW
        } else {
            u64::from(prefetch)
        }
    }
    fn credit(&self, prefetch: u16) -> u64 {
        let in_flight = if self.no_ack {
            0
        } else {
            self.next_tag - self.settled_count
        };
        self.window(prefetch).saturating_sub(in_flight).min(self.remaining)
    }
    /// Marks `tag` (and with `multiple`, every earlier tag) settled; returns how many
    /// deliveries that settled.
    fn settle(&mut self, tag: u64, multiple: bool) -> u64 {
        let tag = tag.min(self.next_tag);
        let before = self.settled_count;
        let mark = |c: &mut Consumer, t: u64| {
            let slot = &mut c.settled[(t % RING) as usize];
            if !*slot {
                *slot = true;
                c.settled_count += 1;
            }
        };
        if multiple {
            for t in self.low + 1..=tag {
                mark(self, t);
            }
        } else if tag > self.low {
            mark(self, tag);
        }
        while self.low < self.next_tag && self.settled[((self.low + 1) % RING) as usize] {
            self.low += 1;
        }
        self.settled_count - before
    }
}

struct Conn<'a> {
    config: &'a Config,
    stats: &'a Stats,
    chans: HashMap<u16, Chan>,
    out: Vec<u8>,
    closing: bool,
}

async fn serve(sock: TcpStream, config: &Config, stats: &Stats) -> io::Result<()> {
    sock.set_nodelay(true)?;
    let mut conn = Conn {
        config,
        stats,
        chans: HashMap::new(),
        out: Vec::with_capacity(OUT_HIGH_WATER * 2),
        closing: false,
    };
    let mut rbuf: Vec<u8> = vec![0; 256 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    let mut greeted = false;
    let mut written = 0usize;
    loop {
        conn.fill_deliveries();
        // Write what we can without waiting.
        while written < conn.out.len() {
            match sock.try_write(&conn.out[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let mut more = false;
        if written == conn.out.len() {
            conn.out.clear();
            written = 0;
            if conn.closing {
                return Ok(());
            }
            // Deliveries still to stream: read what is there without waiting, then go on.
            more = conn.has_credit();
        }
        if more {
            tokio::task::yield_now().await;
        } else {
            let interest = if conn.out.is_empty() {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            let ready = sock.ready(interest).await?;
            if !ready.is_readable() {
                continue;
            }
        }
        if start == end {
            (start, end) = (0, 0);
        } else if rbuf.len() - end < 64 * 1024 {
            rbuf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
            if end == rbuf.len() {
                rbuf.resize(rbuf.len() * 2, 0);
            }
        }
        let n = match sock.try_read(&mut rbuf[end..]) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        end += n;
        if !greeted {
            if end - start < 8 {
                continue;
            }
            if &rbuf[start..start + 8] != b"AMQP\x00\x00\x09\x01" {
                return Err(io::Error::other("bad protocol header"));
            }
            start += 8;
            greeted = true;
            conn.send_start();
        }
        // Every complete frame in the buffer.
        while end - start >= 7 {
            let size = u32::from_be_bytes(rbuf[start + 3..start + 7].try_into().unwrap()) as usize;
            if end - start < size + 8 {
                if size + 8 > rbuf.len() {
                    rbuf.resize(size + 8 + 64 * 1024, 0);
                }
                break;
            }
            let frame = &rbuf[start..start + size + 8];
            if frame[size + 7] != FRAME_END {
                return Err(io::Error::other("bad frame end"));
            }
            conn.handle_frame(frame[0], u16::from_be_bytes([frame[1], frame[2]]), &frame[7..7 + size])?;
            start += size + 8;
        }
        conn.send_confirms();
    }
}

impl Conn<'_> {
    fn has_credit(&self) -> bool {
        self.chans
            .values()
            .any(|c| c.consumer.as_ref().is_some_and(|k| k.credit(c.prefetch) > 0))
    }

    fn fill_deliveries(&mut self) {
        if self.out.len() >= OUT_HIGH_WATER {
            return;
        }
        let mut delivered = 0;
        for ch in self.chans.values_mut() {
            let prefetch = ch.prefetch;
            let Some(k) = ch.consumer.as_mut() else { continue };
            let room = (OUT_HIGH_WATER.saturating_sub(self.out.len()) / k.template.len()).max(1) as u64;
            let n = k.credit(prefetch).min(room);
            for _ in 0..n {
                k.next_tag += 1;
                k.settled[(k.next_tag % RING) as usize] = false;
                let at = self.out.len() + k.tag_at;
                self.out.extend_from_slice(&k.template);
                self.out[at..at + 8].copy_from_slice(&k.next_tag.to_be_bytes());
            }
            k.remaining -= n;
            if k.no_ack {
                k.settled_count = k.next_tag;
                k.low = k.next_tag;
            }
            delivered += n;
        }
        if delivered > 0 {
            self.stats.delivered.fetch_add(delivered, Relaxed);
        }
    }

    fn send_confirms(&mut self) {
        let mut frames = 0;
        let mut covered = 0;
        for (&number, ch) in &mut self.chans {
            if ch.confirm && ch.published > ch.confirmed {
                covered += ch.published - ch.confirmed;
                ch.confirmed = ch.published;
                let tag = ch.published;
                method(&mut self.out, number, 60, 80, |o| {
                    o.extend_from_slice(&tag.to_be_bytes());
                    o.push(1); // multiple
                });
                frames += 1;
            }
        }
        if frames > 0 {
            self.stats.confirm_frames.fetch_add(frames, Relaxed);
            self.stats.confirmed.fetch_add(covered, Relaxed);
        }
    }

    fn send_start(&mut self) {
        method(&mut self.out, 0, 10, 10, |o| {
            o.extend_from_slice(&[0, 9]);
            table(o, |t| {
                field_str(t, "product", "warren-fake-broker");
                field_str(t, "version", "0.0.0");
                t.extend_from_slice(&[12]);
                t.extend_from_slice(b"capabilities");
                t.push(b'F');
                table(t, |c| {
                    for cap in [
                        "publisher_confirms",
                        "exchange_exchange_bindings",
                        "basic.nack",
                        "consumer_cancel_notify",
                        "connection.blocked",
                        "authentication_failure_close",
                        "per_consumer_qos",
                    ] {
                        shortstr(c, cap);
                        c.extend_from_slice(b"t\x01");
                    }
                });
            });
            longstr(o, b"PLAIN AMQPLAIN");
            longstr(o, b"en_US");
        });
    }

    fn handle_frame(&mut self, kind: u8, channel: u16, payload: &[u8]) -> io::Result<()> {
        match kind {
            FRAME_METHOD => {}
            FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT => return Ok(()),
            other => return Err(io::Error::other(format!("unknown frame type {other}"))),
        }
        let mut r = Reader(payload);
        let (class, id) = (r.u16()?, r.u16()?);
        match (class, id) {
            // basic.publish: the hot path for publishers.
            (60, 40) => {
                self.stats.published.fetch_add(1, Relaxed);
                if let Some(ch) = self.chans.get_mut(&channel) {
                    ch.published += 1;
                }
            }
            // basic.ack / basic.reject / basic.nack from a consumer: the hot path for consumers.
            (60, 80) | (60, 90) | (60, 120) => {
                let tag = r.u64()?;
                let multiple = id != 90 && r.u8()? & 1 != 0;
                self.stats.settle_frames.fetch_add(1, Relaxed);
                if let Some(k) = self.chans.get_mut(&channel).and_then(|c| c.consumer.as_mut()) {
                    let n = k.settle(tag, multiple);
                    self.stats.settled.fetch_add(n, Relaxed);
                }
            }
            // connection.start-ok -> tune
            (10, 11) => method(&mut self.out, 0, 10, 30, |o| {
                o.extend_from_slice(&2047u16.to_be_bytes());
                o.extend_from_slice(&FRAME_MAX.to_be_bytes());
                o.extend_from_slice(&0u16.to_be_bytes());
            }),
            (10, 31) => {} // tune-ok
            (10, 40) => method(&mut self.out, 0, 10, 41, |o| shortstr(o, "")),
            (10, 50) => {
                method(&mut self.out, 0, 10, 51, |_| {});
                self.closing = true;
            }
            (10, 51) => self.closing = true,
            (20, 10) => {
                self.chans.insert(channel, Chan::default());
                method(&mut self.out, channel, 20, 11, |o| longstr(o, b""));
            }
            (20, 20) => {
                let active = r.u8()?;
                method(&mut self.out, channel, 20, 21, |o| o.push(active));
            }
            (20, 40) => {
                self.chans.remove(&channel);
                method(&mut self.out, channel, 20, 41, |_| {});
            }
            (20, 41) => {
                self.chans.remove(&channel);
            }
            (40, 10) => {
                r.u16()?;
                r.shortstr()?;
                r.shortstr()?;
                if r.u8()? & 0x10 == 0 {
                    method(&mut self.out, channel, 40, 11, |_| {});
                }
            }
            (50, 10) => {
                r.u16()?;
                let mut queue = r.shortstr()?.to_vec();
                let nowait = r.u8()? & 0x10 != 0;
                if queue.is_empty() {
                    queue = format!("amq.gen-fake-{channel}").into_bytes();
                }
                if !nowait {
                    method(&mut self.out, channel, 50, 11, |o| {
                        o.push(queue.len() as u8);
                        o.extend_from_slice(&queue);
                        o.extend_from_slice(&0u32.to_be_bytes());
                        o.extend_from_slice(&0u32.to_be_bytes());
                    });
                }
            }
            (50, 20) => {
                r.u16()?;
                r.shortstr()?;
                r.shortstr()?;
                r.shortstr()?;
                if r.u8()? & 1 == 0 {
                    method(&mut self.out, channel, 50, 21, |_| {});
                }
            }
            (50, 30) | (50, 40) => {
                r.u16()?;
                r.shortstr()?;
                let bits = r.u8()?;
                let nowait = if id == 30 { bits & 1 != 0 } else { bits & 4 != 0 };
                if !nowait {
                    method(&mut self.out, channel, 50, id + 1, |o| {
                        o.extend_from_slice(&0u32.to_be_bytes())
                    });
                }
            }
            (60, 10) => {
                r.u32()?;
                let count = r.u16()?;
                if let Some(ch) = self.chans.get_mut(&channel) {
                    ch.prefetch = count;
                }
                method(&mut self.out, channel, 60, 11, |_| {});
            }
            (60, 20) => {
                r.u16()?;
                r.shortstr()?;
                let mut tag = r.shortstr()?.to_vec();
                let bits = r.u8()?;
                if tag.is_empty() {
                    tag = format!("amq.ctag-fake-{channel}").into_bytes();
                }
                if bits & 8 == 0 {
                    method(&mut self.out, channel, 60, 21, |o| {
                        o.push(tag.len() as u8);
                        o.extend_from_slice(&tag);
                    });
                }
                let (template, tag_at) = delivery_template(channel, &tag, self.config.body_size);
                if let Some(ch) = self.chans.get_mut(&channel) {
                    ch.consumer = Some(Consumer {
                        template,
                        tag_at,
                        no_ack: bits & 2 != 0,
                        remaining: self.config.deliveries,
                        next_tag: 0,
                        settled: vec![false; RING as usize],
                        low: 0,
                        settled_count: 0,
                    });
                }
            }
            (60, 30) => {
                let tag = r.shortstr()?.to_vec();
                let nowait = r.u8()? & 1 != 0;
                if let Some(ch) = self.chans.get_mut(&channel) {
                    ch.consumer = None;
                }
                if !nowait {
                    method(&mut self.out, channel, 60, 31, |o| {
                        o.push(tag.len() as u8);
                        o.extend_from_slice(&tag);
                    });
                }
            }
            (85, 10) => {
                let nowait = r.u8()? & 1 != 0;
                if let Some(ch) = self.chans.get_mut(&channel) {
                    ch.confirm = true;
                }
                if !nowait {
                    method(&mut self.out, channel, 85, 11, |_| {});
                }
            }
            (class, id) => eprintln!("fake broker: ignoring method {class}.{id} on channel {channel}"),
        }
        Ok(())
    }
}

/// basic.deliver + content header (delivery-mode 1) + one body frame, and the offset of
/// the delivery tag.
fn delivery_template(channel: u16, consumer_tag: &[u8], body_size: usize) -> (Vec<u8>, usize) {
    let mut t = Vec::new();
    method(&mut t, channel, 60, 60, |o| {
        o.push(consumer_tag.len() as u8);
        o.extend_from_slice(consumer_tag);
        o.extend_from_slice(&[0; 8]); // delivery tag, patched per message
        o.push(0); // redelivered
        shortstr(o, ""); // exchange
        shortstr(o, "bench"); // routing key
    });
    let tag_at = 7 + 4 + 1 + consumer_tag.len();
    frame(&mut t, FRAME_HEADER, channel, |o| {
        o.extend_from_slice(&60u16.to_be_bytes());
        o.extend_from_slice(&0u16.to_be_bytes());
        o.extend_from_slice(&(body_size as u64).to_be_bytes());
        o.extend_from_slice(&0x1000u16.to_be_bytes()); // property flags: delivery-mode
        o.push(1);
    });
    frame(&mut t, FRAME_BODY, channel, |o| o.resize(o.len() + body_size, 0xA5));
    (t, tag_at)
}

// ---------------------------------------------------------------------------------------
// Encoding and decoding helpers.

fn frame(out: &mut Vec<u8>, kind: u8, channel: u16, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    payload(out);
    let size = (out.len() - start - 7) as u32;
    out[start + 3..start + 7].copy_from_slice(&size.to_be_bytes());
    out.push(FRAME_END);
}

fn method(out: &mut Vec<u8>, channel: u16, class: u16, id: u16, args: impl FnOnce(&mut Vec<u8>)) {
    frame(out, FRAME_METHOD, channel, |o| {
        o.extend_from_slice(&class.to_be_bytes());
        o.extend_from_slice(&id.to_be_bytes());
        args(o);
    });
}

fn shortstr(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn longstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn table(out: &mut Vec<u8>, fields: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    fields(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

fn field_str(out: &mut Vec<u8>, key: &str, value: &str) {
    shortstr(out, key);
    out.push(b'S');
    longstr(out, value.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(io::Error::other("truncated method"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn shortstr(&mut self) -> io::Result<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(no_ack: bool) -> Consumer {
        Consumer {
            template: vec![0; 10],
            tag_at: 0,
            no_ack,
            remaining: 100,
            next_tag: 0,
            settled: vec![false; RING as usize],
            low: 0,
            settled_count: 0,
        }
    }

    #[test]
    fn window_accounting() {
        let mut k = consumer(false);
        assert_eq!(k.credit(10), 10);
        k.next_tag = 10;
        for t in 1..=10 {
            k.settled[t % RING as usize] = false;
        }
        assert_eq!(k.credit(10), 0);
        assert_eq!(k.settle(3, false), 1);
        assert_eq!(k.settle(3, false), 0, "double ack counts once");
        assert_eq!(k.credit(10), 1);
        assert_eq!(k.settle(5, true), 4);
        assert_eq!(k.low, 5);
        assert_eq!(k.settle(10, true), 5);
        assert_eq!(k.credit(10), 10);
    }

    #[test]
    fn template_has_tag_slot() {
        let (t, at) = delivery_template(1, b"ctag", 256);
        assert_eq!(&t[at - 5..at], b"\x04ctag");
        assert_eq!(
            t.len(),
            (7 + 4 + 5 + 8 + 1 + 1 + 6 + 1) + (7 + 14 + 1 + 1) + (7 + 256 + 1)
        );
    }
}
