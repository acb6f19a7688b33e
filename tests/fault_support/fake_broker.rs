//! A scripted fake broker: a loopback `TcpListener` whose one connection is driven by a test
//! script, frame by frame, with frames built by `warren::wire`'s encoders (or by hand, when
//! the point is to break them).
//!
//! ```ignore
//! let broker = FakeBroker::spawn(|mut peer| async move {
//!     peer.handshake(tune(2047, 131072, 0)).await;
//!     peer.send_raw(&[1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 60, 0xAB]).await; // bad frame end
//!     peer.expect_connection_close().await.reply_code
//! }).await;
//! let conn = Connection::connect_with(broker.config()).await?;
//! assert_eq!(broker.join().await, 501);
//! ```
//!
//! Every wait of the script is bounded ([`STEP`]); a script that panics (e.g. the client
//! sent something unexpected) fails the test through [`FakeBroker::join`].

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use warren::client::{ConnectionConfig, RecoveryConfig};
use warren::wire::{
    ConnectionClose, ConnectionCloseOk, ConnectionOpenOk, ConnectionStart, ConnectionTune, ContentHeader, FRAME_END,
    FieldTable, FieldValue, Frame, Method, PROTOCOL_HEADER, ShortStr, encode_header, encode_method,
};

/// The longest any single step of a script waits for the client.
pub const STEP: Duration = Duration::from_secs(10);

/// A fake broker serving exactly one connection with a script.
pub struct FakeBroker<T> {
    addr: SocketAddr,
    task: JoinHandle<T>,
}

impl<T: Send + 'static> FakeBroker<T> {
    /// Listens on an ephemeral loopback port; the first connection is handed to `script`.
    pub async fn spawn<F, Fut>(script: F) -> FakeBroker<T>
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake broker");
        let addr = listener.local_addr().expect("fake broker address");
        let task = tokio::spawn(async move {
            let (stream, _) = tokio::time::timeout(STEP, listener.accept())
                .await
                .expect("the client did not connect to the fake broker within 10 s")
                .expect("accept");
            let _ = stream.set_nodelay(true);
            script(Peer::new(stream)).await
        });
        FakeBroker { addr, task }
    }

    /// The fake broker's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client configuration for this broker with short timeouts (connect 5 s, RPC 5 s,
    /// close 2 s), named `warren-fake`, recovery off (the fake serves one connection).
    pub fn config(&self) -> ConnectionConfig {
        let mut config = ConnectionConfig::from_uri(&format!("amqp://guest:guest@{}/%2f", self.addr))
            .expect("fake broker URI")
            .with_connection_name("warren-fake");
        config.connect_timeout = Duration::from_secs(5);
        config.rpc_timeout = Some(Duration::from_secs(5));
        config.protocol.close_timeout = Duration::from_secs(2);
        config.recovery = RecoveryConfig::disabled();
        config
    }

    /// Waits (at most 30 s) for the script to finish and returns what it returned; a panic
    /// in the script fails the calling test with the script's message.
    pub async fn join(self) -> T {
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("fake broker script failed: {e}"),
            Err(_) => panic!("fake broker script still running after 30 s"),
        }
    }
}

/// What the peer read from the client.
#[derive(Debug)]
pub enum Inbound {
    /// A frame.
    Frame(Frame),
    /// End of stream (or a reset).
    Eof,
}

/// The broker's side of the one connection.
pub struct Peer {
    stream: TcpStream,
    rbuf: BytesMut,
    /// Frame limit applied when parsing what the client sends (0: none).
    pub frame_max: u32,
}

impl Peer {
    /// A peer on a connection the test accepted itself (e.g. several in turn).
    pub fn from_stream(stream: TcpStream) -> Peer {
        let _ = stream.set_nodelay(true);
        Peer::new(stream)
    }

    fn new(stream: TcpStream) -> Peer {
        Peer {
            stream,
            rbuf: BytesMut::with_capacity(64 * 1024),
            frame_max: 0,
        }
    }

    /// Reads the client's 8-byte protocol header and checks it.
    pub async fn expect_protocol_header(&mut self) {
        while self.rbuf.len() < 8 {
            let n = self.read_more().await;
            assert!(n > 0, "client closed before sending the protocol header");
        }
        let head = self.rbuf.split_to(8);
        assert_eq!(&head[..], &PROTOCOL_HEADER, "client protocol header");
    }

    async fn read_more(&mut self) -> usize {
        match tokio::time::timeout(STEP, self.stream.read_buf(&mut self.rbuf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0, // reset counts as end of stream
            Err(_) => panic!("fake broker: nothing from the client for {STEP:?}"),
        }
    }

    /// The next frame from the client (heartbeats included), or `Eof`.
    pub async fn recv(&mut self) -> Inbound {
        loop {
            match Frame::parse(&mut self.rbuf, self.frame_max) {
                Ok(Some(frame)) => return Inbound::Frame(frame),
                Ok(None) => {}
                Err(e) => panic!("the client sent an undecodable frame: {e}"),
            }
            if self.read_more().await == 0 {
                return Inbound::Eof;
            }
        }
    }

    /// The next method from the client, skipping heartbeats; panics on content or EOF.
    pub async fn recv_method(&mut self) -> (u16, Method) {
        loop {
            match self.recv().await {
                Inbound::Frame(Frame::Method { channel, method }) => return (channel, method),
                Inbound::Frame(Frame::Heartbeat) => continue,
                Inbound::Frame(other) => panic!("expected a method from the client, got {other:?}"),
                Inbound::Eof => panic!("expected a method from the client, got end of stream"),
            }
        }
    }

    /// Like [`recv_method`](Self::recv_method) but returns `None` on end of stream.
    pub async fn try_recv_method(&mut self) -> Option<(u16, Method)> {
        loop {
            match self.recv().await {
                Inbound::Frame(Frame::Method { channel, method }) => return Some((channel, method)),
                Inbound::Frame(_) => continue,
                Inbound::Eof => return None,
            }
        }
    }

    /// Sends one method frame.
    pub async fn send(&mut self, channel: u16, method: Method) {
        let mut buf = BytesMut::new();
        encode_method(channel, &method, &mut buf);
        self.send_raw(&buf).await;
    }

    /// Sends one frame as encoded by `warren::wire`.
    pub async fn send_frame(&mut self, frame: &Frame) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        self.send_raw(&buf).await;
    }

    /// Sends bytes as they are. Errors (the client has gone) are ignored: the script's
    /// next read reports what happened.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = tokio::time::timeout(STEP, self.stream.write_all(bytes)).await;
    }

    /// `connection.start` → `start-ok` → `tune` → `tune-ok` → `open` → `open-ok`.
    /// Returns the client's `tune-ok` values.
    pub async fn handshake(&mut self, tune: ConnectionTune) -> (u16, u32, u16) {
        self.handshake_with(start(), tune).await
    }

    /// [`handshake`](Self::handshake) with this `connection.start`.
    pub async fn handshake_with(&mut self, start: ConnectionStart, tune: ConnectionTune) -> (u16, u32, u16) {
        self.expect_protocol_header().await;
        self.send(0, Method::ConnectionStart(start)).await;
        let (ch, m) = self.recv_method().await;
        assert!(
            ch == 0 && matches!(m, Method::ConnectionStartOk(_)),
            "expected start-ok, got {m:?}"
        );
        self.send(0, Method::ConnectionTune(tune)).await;
        let (_, m) = self.recv_method().await;
        let Method::ConnectionTuneOk(ok) = m else {
            panic!("expected tune-ok, got {m:?}")
        };
        let tuned = (ok.channel_max, ok.frame_max, ok.heartbeat);
        self.frame_max = ok.frame_max;
        let (_, m) = self.recv_method().await;
        assert!(
            matches!(m, Method::ConnectionOpen(_)),
            "expected connection.open, got {m:?}"
        );
        self.send(0, Method::ConnectionOpenOk(ConnectionOpenOk {})).await;
        tuned
    }

    /// Waits for `channel.open`, answers `open-ok`; returns the channel number.
    pub async fn accept_channel(&mut self) -> u16 {
        let (ch, m) = self.recv_method().await;
        assert!(matches!(m, Method::ChannelOpen(_)), "expected channel.open, got {m:?}");
        self.send(ch, Method::ChannelOpenOk(Default::default())).await;
        ch
    }

    /// Waits for the client's `connection.close` (skipping everything else), answers
    /// `close-ok`, and returns it. Panics on end of stream before it.
    pub async fn expect_connection_close(&mut self) -> ConnectionClose {
        loop {
            match self.recv().await {
                Inbound::Frame(Frame::Method {
                    channel: 0,
                    method: Method::ConnectionClose(close),
                }) => {
                    self.send(0, Method::ConnectionCloseOk(ConnectionCloseOk {})).await;
                    return close;
                }
                Inbound::Frame(_) => continue,
                Inbound::Eof => panic!("the client closed the socket without connection.close"),
            }
        }
    }

    /// Waits for `channel.close` on `channel` (skipping everything else), answers
    /// `close-ok`, and returns its reply code.
    pub async fn expect_channel_close(&mut self, channel: u16) -> u16 {
        loop {
            match self.recv().await {
                Inbound::Frame(Frame::Method {
                    channel: ch,
                    method: Method::ChannelClose(close),
                }) if ch == channel => {
                    self.send(ch, Method::ChannelCloseOk(Default::default())).await;
                    return close.reply_code;
                }
                Inbound::Frame(Frame::Method {
                    channel: 0,
                    method: Method::ConnectionClose(close),
                }) => {
                    panic!("expected channel.close on {channel}, the client closed the connection: {close:?}")
                }
                Inbound::Frame(_) => continue,
                Inbound::Eof => panic!("expected channel.close on {channel}, got end of stream"),
            }
        }
    }

    /// Waits until the client closes the socket, ignoring (and not answering) frames.
    /// Returns the `connection.close` it saw on the way, if any.
    pub async fn expect_eof(&mut self) -> Option<ConnectionClose> {
        let mut close = None;
        loop {
            match self.recv_or_garbage().await {
                Some(Frame::Method {
                    channel: 0,
                    method: Method::ConnectionClose(c),
                }) => close = Some(c),
                Some(_) => {}
                None => return close,
            }
        }
    }

    /// Like [`recv`](Self::recv), but skips input it cannot decode; `None` on end of stream.
    pub async fn recv_or_garbage(&mut self) -> Option<Frame> {
        loop {
            match Frame::parse(&mut self.rbuf, 0) {
                Ok(Some(frame)) => return Some(frame),
                Ok(None) => {}
                Err(_) => {
                    self.rbuf.clear();
                }
            }
            if self.read_more().await == 0 {
                return None;
            }
        }
    }

    /// Reads and drops everything until end of stream or `d` passes; true on end of stream.
    pub async fn drain_for(&mut self, d: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            self.rbuf.clear();
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.rbuf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }

    /// The socket, for scripts that do something unusual.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

/// A `connection.start` like RabbitMQ's: version 0-9, PLAIN and AMQPLAIN, a few capabilities.
pub fn start() -> ConnectionStart {
    let mut caps = FieldTable::new();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
    ] {
        caps.insert(ShortStr::try_from(cap).unwrap(), FieldValue::Bool(true));
    }
    let mut props = FieldTable::new();
    props.insert(
        ShortStr::from_static("product"),
        FieldValue::LongStr(Bytes::from_static(b"warren fake broker")),
    );
    props.insert(ShortStr::from_static("capabilities"), FieldValue::Table(caps));
    ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
        locales: Bytes::from_static(b"en_US"),
    }
}

/// A `connection.tune`.
pub fn tune(channel_max: u16, frame_max: u32, heartbeat: u16) -> ConnectionTune {
    ConnectionTune {
        channel_max,
        frame_max,
        heartbeat,
    }
}

/// A raw frame: `type channel size payload end` with the given frame-end octet.
pub fn raw_frame(frame_type: u8, channel: u16, payload: &[u8], end: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.push(frame_type);
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(end);
    v
}

/// A well-formed raw frame.
pub fn frame(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    raw_frame(frame_type, channel, payload, FRAME_END)
}

/// The payload of a method frame (class id, method id, arguments).
pub fn method_payload(method: &Method) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_method(0, method, &mut buf);
    buf[7..buf.len() - 1].to_vec()
}

/// A content header frame claiming `body_size` bytes.
pub fn header_frame(channel: u16, body_size: u64) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let header = ContentHeader {
        class_id: 60,
        body_size,
        properties: Default::default(),
    };
    encode_header(channel, &header, &mut buf);
    buf.to_vec()
}

/// A body frame.
pub fn body_frame(channel: u16, body: &[u8]) -> Vec<u8> {
    frame(warren::wire::FRAME_BODY, channel, body)
}

/// Method payload bytes from a class id, method id and raw argument bytes.
pub fn raw_method(class_id: u16, method_id: u16, args: &[u8]) -> Vec<u8> {
    let mut v = BytesMut::new();
    v.put_u16(class_id);
    v.put_u16(method_id);
    v.put_slice(args);
    v.to_vec()
}
