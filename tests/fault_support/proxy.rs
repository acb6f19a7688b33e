//! A TCP proxy between the client and the broker that injects network faults.
//!
//! ```text
//!   client ──► 127.0.0.1:<proxy port> ──► upstream (the broker)
//! ```
//!
//! Every accepted connection gets two pumps (client→broker and broker→client). Each pump is a
//! reader task that stamps the bytes it reads and a writer task that delivers them. What a pump
//! does with the bytes is decided, chunk by chunk, by the proxy's current [`Mode`] for that
//! direction:
//!
//! - [`Mode::Forward`]: deliver at once.
//! - [`Mode::Blackhole`]: read and drop, silently. Both TCP connections stay open: only a
//!   heartbeat timeout can tell the client that the peer has gone.
//! - [`Mode::Delay`]: deliver each chunk that much later, in order.
//! - [`Mode::Trickle`]: deliver one byte per write (with `TCP_NODELAY` and a pause between
//!   bytes, so the peer's reads split frames at every byte boundary).
//!
//! [`Proxy::cut_all`] resets every live connection (RST to both sides, no close handshake);
//! [`Proxy::set_accepting`] `false` resets new connections as soon as they are accepted (a host
//! that is down). Everything is loopback-only and every task ends when the [`Proxy`] is dropped.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What a pump does with the bytes it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver at once.
    Forward,
    /// Drop everything, keep both connections open.
    Blackhole,
    /// Deliver every chunk this much later (order kept).
    Delay(Duration),
    /// Deliver one byte per write, pausing this long between bytes (zero: only yield to the
    /// scheduler; a millisecond or so makes each byte its own TCP segment on loopback).
    Trickle(Duration),
}

/// A direction through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to broker.
    Up,
    /// Broker to client.
    Down,
}

/// Counters of one proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted (including refused ones).
    pub accepted: u64,
    /// Connections refused while not accepting.
    pub refused: u64,
    /// Connections currently forwarding.
    pub live: u64,
    /// Connections reset by [`Proxy::cut_all`].
    pub cut: u64,
    /// Bytes delivered client→broker.
    pub bytes_up: u64,
    /// Bytes delivered broker→client.
    pub bytes_down: u64,
    /// Bytes dropped by a blackhole, both directions.
    pub bytes_dropped: u64,
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    modes: Mutex<(Mode, Mode)>,
    accepting: AtomicBool,
    /// Bumped by `cut_all`: every connection started under an older value resets itself.
    cut_gen: watch::Sender<u64>,
    conns: Mutex<HashMap<u64, ()>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    cut: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    bytes_dropped: AtomicU64,
}

impl Shared {
    fn mode(&self, dir: Dir) -> Mode {
        let m = self.modes.lock().unwrap();
        match dir {
            Dir::Up => m.0,
            Dir::Down => m.1,
        }
    }
}

/// A running fault-injecting proxy. Dropping it stops the listener and resets every connection.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut_gen, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            modes: Mutex::new((Mode::Forward, Mode::Forward)),
            accepting: AtomicBool::new(true),
            cut_gen,
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            bytes_dropped: AtomicU64::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy {
            addr,
            shared,
            accept_task,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `amqp://guest:guest@<proxy addr>/` (with `query`, e.g. `"heartbeat=1"`, when not empty).
    pub fn uri(&self, query: &str) -> String {
        if query.is_empty() {
            format!("amqp://guest:guest@{}/%2f", self.addr)
        } else {
            format!("amqp://guest:guest@{}/%2f?{query}", self.addr)
        }
    }

    /// Where new connections go (live ones keep their broker).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.shared.upstream.lock().unwrap() = upstream;
    }

    /// The mode of both directions, for the bytes read from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.modes.lock().unwrap() = (mode, mode);
    }

    /// The mode of one direction, for the bytes read from now on.
    pub fn set_mode_dir(&self, dir: Dir, mode: Mode) {
        let mut m = self.shared.modes.lock().unwrap();
        match dir {
            Dir::Up => m.0 = mode,
            Dir::Down => m.1 = mode,
        }
    }

    /// Shorthand for `set_mode(Mode::Blackhole)`.
    pub fn blackhole(&self) {
        self.set_mode(Mode::Blackhole);
    }

    /// Shorthand for `set_mode(Mode::Forward)`.
    pub fn heal(&self) {
        self.set_mode(Mode::Forward);
    }

    /// Whether new connections are forwarded (`true`) or reset at once (`false`).
    pub fn set_accepting(&self, accepting: bool) {
        self.shared.accepting.store(accepting, Ordering::SeqCst);
    }

    /// Resets every live connection (RST to client and broker). Returns how many there were.
    pub fn cut_all(&self) -> usize {
        let live = self.shared.conns.lock().unwrap().len();
        self.shared.cut_gen.send_modify(|g| *g += 1);
        live
    }

    /// Number of connections currently forwarding.
    pub fn live(&self) -> usize {
        self.shared.conns.lock().unwrap().len()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            accepted: s.accepted.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            live: s.conns.lock().unwrap().len() as u64,
            cut: s.cut.load(Ordering::Relaxed),
            bytes_up: s.bytes_up.load(Ordering::Relaxed),
            bytes_down: s.bytes_down.load(Ordering::Relaxed),
            bytes_dropped: s.bytes_dropped.load(Ordering::Relaxed),
        }
    }

    /// Waits until at least `n` connections are live, or `timeout` passes (returns false).
    pub async fn wait_live(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.live() < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.shared.accepting.store(false, Ordering::SeqCst);
        self.shared.cut_gen.send_modify(|g| *g += 1);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (client, _) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                // EMFILE and friends: back off briefly rather than spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        if !shared.accepting.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            reset(client);
            continue;
        }
        tokio::spawn(connection(client, shared.clone()));
    }
}

/// Closes with RST (SO_LINGER 0) rather than FIN.
// `set_linger` is deprecated because a non-zero linger blocks the thread on drop; zero does not.
#[allow(deprecated)]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn connection(client: TcpStream, shared: Arc<Shared>) {
    let mut cut_rx = shared.cut_gen.subscribe();
    let started_gen = *cut_rx.borrow_and_update();
    let upstream_addr = *shared.upstream.lock().unwrap();
    let upstream = tokio::select! {
        r = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(upstream_addr)) => match r {
            Ok(Ok(s)) => s,
            _ => {
                // Broker unreachable: the client sees a reset, as it would connecting directly.
                reset(client);
                return;
            }
        },
        _ = cut_rx.changed() => {
            reset(client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    shared.conns.lock().unwrap().insert(id, ());

    let (client_r, client_w) = client.into_split();
    let (up_r, up_w) = upstream.into_split();
    let mut up = pump(Dir::Up, client_r, up_w, shared.clone());
    let mut down = pump(Dir::Down, up_r, client_w, shared.clone());

    // Ends when both directions are done (each side closed), or on a cut.
    let mut up_done = false;
    let mut down_done = false;
    let cut = loop {
        tokio::select! {
            r = cut_rx.changed() => {
                if r.is_err() || *cut_rx.borrow() != started_gen {
                    break true;
                }
            }
            _ = &mut up.writer, if !up_done => {
                up_done = true;
                up.reader.abort();
                if down_done { break false; }
            }
            _ = &mut down.writer, if !down_done => {
                down_done = true;
                down.reader.abort();
                if up_done { break false; }
            }
        }
    };
    if cut {
        shared.cut.fetch_add(1, Ordering::Relaxed);
        // The writers own the write halves: they set SO_LINGER 0 and let go without a FIN;
        // then dropping the read halves (the readers) closes both sockets with RST.
        let _ = up.reset.send(true);
        let _ = down.reset.send(true);
        if !up_done {
            let _ = (&mut up.writer).await;
        }
        if !down_done {
            let _ = (&mut down.writer).await;
        }
        up.reader.abort();
        down.reader.abort();
    }
    shared.conns.lock().unwrap().remove(&id);
}

struct Pump {
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    reset: watch::Sender<bool>,
}

/// A chunk read by a pump and when to deliver it; `None` bytes mean "the source closed".
struct Chunk {
    due: Instant,
    bytes: Option<Vec<u8>>,
    trickle: Option<Duration>,
}

fn pump(dir: Dir, mut src: OwnedReadHalf, mut dst: OwnedWriteHalf, shared: Arc<Shared>) -> Pump {
    // Bounded: a slow writer (trickle, delay) pushes back on the reader and so on the sender.
    let (tx, mut rx) = mpsc::channel::<Chunk>(256);
    let reader_shared = shared.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match src.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tx
                        .send(Chunk {
                            due: Instant::now(),
                            bytes: None,
                            trickle: None,
                        })
                        .await;
                    return;
                }
                Ok(n) => n,
            };
            let now = Instant::now();
            let chunk = match reader_shared.mode(dir) {
                Mode::Blackhole => {
                    reader_shared.bytes_dropped.fetch_add(n as u64, Ordering::Relaxed);
                    continue;
                }
                Mode::Forward => Chunk {
                    due: now,
                    bytes: Some(buf[..n].to_vec()),
                    trickle: None,
                },
                Mode::Delay(d) => Chunk {
                    due: now + d,
                    bytes: Some(buf[..n].to_vec()),
                    trickle: None,
                },
                Mode::Trickle(pause) => Chunk {
                    due: now,
                    bytes: Some(buf[..n].to_vec()),
                    trickle: Some(pause),
                },
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let (reset, mut reset_rx) = watch::channel(false);
    let writer = tokio::spawn(async move {
        let counter = match dir {
            Dir::Up => &shared.bytes_up,
            Dir::Down => &shared.bytes_down,
        };
        // Boxed so that it can be dropped (ending its borrow of `dst`) before a reset.
        let mut delivered = Box::pin(async {
            while let Some(chunk) = rx.recv().await {
                tokio::time::sleep_until(chunk.due).await;
                let Some(bytes) = chunk.bytes else {
                    // Source closed: pass the FIN on.
                    let _ = dst.shutdown().await;
                    return;
                };
                if let Some(pause) = chunk.trickle {
                    for b in &bytes {
                        if dst.write_all(std::slice::from_ref(b)).await.is_err() {
                            return;
                        }
                        counter.fetch_add(1, Ordering::Relaxed);
                        if pause.is_zero() {
                            tokio::task::yield_now().await;
                        } else {
                            tokio::time::sleep(pause).await;
                        }
                    }
                } else {
                    if dst.write_all(&bytes).await.is_err() {
                        return;
                    }
                    counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
            }
        });
        let reset = tokio::select! {
            biased;
            _ = reset_rx.wait_for(|r| *r) => true,
            _ = &mut delivered => false,
        };
        drop(delivered);
        if reset {
            #[allow(deprecated)] // zero linger: no blocking on drop
            let _ = dst.as_ref().set_linger(Some(Duration::ZERO));
            // Skip the FIN that dropping a write half sends: the reset is the point.
            dst.forget();
        }
    });
    Pump { reader, writer, reset }
}
