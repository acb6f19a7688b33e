//! Codec benchmark: decode and encode of one incoming message as RabbitMQ sends it
//! (basic.deliver + content header + 256-byte body on channel 1), and of each frame kind
//! alone (deliver method, content header, body, heartbeat).
//!
//! - decode: `Frame::parse` over a `BytesMut` holding `n` copies of the frames (the copy
//!   into the buffer is not timed: in a client the socket read fills it).
//! - decode-copyin (message only): the same, plus copying the bytes from a `&[u8]` into
//!   a reused, already-faulted `BytesMut` inside the timed region — what an adapter taking
//!   `&[u8]` (the peer-bench harness) has to do.
//! - decode-in-place: `FrameRef::parse` over the same bytes as a `&[u8]` (views of the
//!   input, no reference counts, no copy-in).
//! - decode-read (message only): decode, then read what a consumer that looks at its
//!   properties reads (the content type and one header), which builds them: received
//!   properties are checked at decode and built on first read.
//! - encode: `Frame::encode` of the pre-built frames `n` times into a pre-reserved `BytesMut`.
//! - copy (message only): the encoded bytes themselves copied `n` times into that buffer,
//!   one `put_slice` each: what writing the output costs any encoder, the floor under
//!   encode.
//!
//! ns per message is per frame for the single-frame cases. Run:
//! `cargo bench -p warren-benches --bench codec [-- --json] [-- FILTER]`;
//! `WARREN_BENCH_N` / `WARREN_BENCH_REPS` / `WARREN_BENCH_WARMUP=0` shrink a run for callgrind.

use bytes::{BufMut, BytesMut};
use warren::wire::{Frame, FrameRef};
use warren_benches::{Harness, time};

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const BODY_SIZE: usize = 256;

fn frame(buf: &mut Vec<u8>, frame_type: u8, channel: u16, payload: &[u8]) {
    buf.push(frame_type);
    buf.extend_from_slice(&channel.to_be_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    buf.push(0xCE);
}

fn shortstr(p: &mut Vec<u8>, s: &str) {
    p.push(s.len() as u8);
    p.extend_from_slice(s.as_bytes());
}

/// basic.deliver(consumer-tag "ctag-1", delivery-tag 1, redelivered false, exchange "",
/// routing-key "bench-queue") on channel 1, byte for byte as RabbitMQ writes it.
fn deliver_frame() -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&60u16.to_be_bytes());
    p.extend_from_slice(&60u16.to_be_bytes());
    shortstr(&mut p, "ctag-1");
    p.extend_from_slice(&1u64.to_be_bytes());
    p.push(0);
    shortstr(&mut p, "");
    shortstr(&mut p, "bench-queue");
    let mut f = Vec::new();
    frame(&mut f, FRAME_METHOD, 1, &p);
    f
}

/// Content header: class 60, body size 256, content-type "application/octet-stream",
/// headers {x-trace-id: S "4bf9...", x-retry-count: I 3}, delivery-mode 2.
fn header_frame() -> Vec<u8> {
    let mut table = Vec::new();
    shortstr(&mut table, "x-trace-id");
    table.push(b'S');
    let trace = b"4bf92f3577b34da6a3ce929d0e0e4736";
    table.extend_from_slice(&(trace.len() as u32).to_be_bytes());
    table.extend_from_slice(trace);
    shortstr(&mut table, "x-retry-count");
    table.push(b'I');
    table.extend_from_slice(&3i32.to_be_bytes());

    let mut p = Vec::new();
    p.extend_from_slice(&60u16.to_be_bytes());
    p.extend_from_slice(&0u16.to_be_bytes());
    p.extend_from_slice(&(BODY_SIZE as u64).to_be_bytes());
    // content-type (bit 15), headers (bit 13), delivery-mode (bit 12).
    p.extend_from_slice(&0xB000u16.to_be_bytes());
    shortstr(&mut p, "application/octet-stream");
    p.extend_from_slice(&(table.len() as u32).to_be_bytes());
    p.extend_from_slice(&table);
    p.push(2);
    let mut f = Vec::new();
    frame(&mut f, FRAME_HEADER, 1, &p);
    f
}

fn body_frame() -> Vec<u8> {
    let body: Vec<u8> = (0..BODY_SIZE).map(|i| (i * 7 + 3) as u8).collect();
    let mut f = Vec::new();
    frame(&mut f, FRAME_BODY, 1, &body);
    f
}

fn heartbeat_frame() -> Vec<u8> {
    let mut f = Vec::new();
    frame(&mut f, FRAME_HEARTBEAT, 0, &[]);
    f
}

/// Decodes every frame of `wire` and checks the encoder gives the same bytes back.
fn frames_of(wire: &[u8]) -> Vec<Frame> {
    let mut buf = BytesMut::from(wire);
    let mut frames = Vec::new();
    while let Some(f) = Frame::parse(&mut buf, 0).expect("sample frames decode") {
        frames.push(f);
    }
    assert!(buf.is_empty(), "sample bytes hold whole frames");
    let mut again = BytesMut::new();
    for f in &frames {
        f.encode(&mut again);
    }
    assert_eq!(&again[..], wire, "encode(decode(x)) == x for the sample");
    frames
}

#[inline(never)]
fn decode_all(buf: &mut BytesMut) -> usize {
    let mut count = 0;
    while let Some(frame) = Frame::parse(buf, 0).expect("bench input decodes") {
        std::hint::black_box(&frame);
        count += 1;
    }
    count
}

#[inline(never)]
fn decode_in_place_all(input: &[u8]) -> usize {
    let (mut count, mut at) = (0, 0);
    while let Some((frame, len)) = FrameRef::parse(&input[at..], 0).expect("bench input decodes") {
        std::hint::black_box(&frame);
        at += len;
        count += 1;
    }
    count
}

#[inline(never)]
fn decode_read_all(buf: &mut BytesMut) -> usize {
    let mut count = 0;
    while let Some(frame) = Frame::parse(buf, 0).expect("bench input decodes") {
        if let Frame::Header { header, .. } = &frame {
            let p = &header.properties;
            let retries = p.headers.as_ref().and_then(|h| h.get("x-retry-count"));
            std::hint::black_box((p.content_type.as_deref(), retries));
        }
        std::hint::black_box(&frame);
        count += 1;
    }
    count
}

#[inline(never)]
fn encode_n(frames: &[Frame], n: usize, buf: &mut BytesMut) {
    for _ in 0..n {
        for f in frames {
            f.encode(buf);
        }
    }
}

#[inline(never)]
fn copy_n(wire: &[u8], n: usize, buf: &mut BytesMut) {
    for _ in 0..n {
        buf.put_slice(wire);
    }
}

fn main() {
    let mut h = Harness::new("codec", 100_000);
    let n = h.cfg.n;
    let (deliver, header, body, heartbeat) = (deliver_frame(), header_frame(), body_frame(), heartbeat_frame());
    let message = [deliver.clone(), header.clone(), body.clone()].concat();
    let cases: [(&str, &[u8]); 5] = [
        ("message", &message),
        ("deliver", &deliver),
        ("header", &header),
        ("body", &body),
        ("heartbeat", &heartbeat),
    ];
    for (case, wire) in cases {
        let frames = frames_of(wire);
        let len = wire.len();
        let stream: Vec<u8> = wire.repeat(n);

        h.run(case, "decode", len, |n| {
            let mut buf = BytesMut::from(&stream[..]);
            let mut count = 0;
            let t = time(|| count = decode_all(&mut buf));
            assert_eq!(count, n * frames.len());
            t
        });

        h.run(case, "decode-in-place", len, |n| {
            let mut count = 0;
            let t = time(|| count = decode_in_place_all(std::hint::black_box(&stream[..])));
            assert_eq!(count, n * frames.len());
            t
        });

        if case == "message" {
            h.run(case, "decode-read", len, |n| {
                let mut buf = BytesMut::from(&stream[..]);
                let mut count = 0;
                let t = time(|| count = decode_read_all(&mut buf));
                assert_eq!(count, n * frames.len());
                t
            });

            let mut scratch = BytesMut::with_capacity(stream.len());
            h.run(case, "decode-copyin", len, |n| {
                scratch.clear();
                let mut count = 0;
                let t = time(|| {
                    scratch.put_slice(std::hint::black_box(&stream[..]));
                    count = decode_all(&mut scratch);
                });
                assert_eq!(count, n * frames.len());
                // The frames are dropped: the buffer is unique again and keeps its pages.
                scratch.reserve(stream.len());
                t
            });
        }

        let mut out = BytesMut::with_capacity(len * n);
        h.run(case, "encode", len, |n| {
            out.clear();
            let t = time(|| encode_n(&frames, n, &mut out));
            assert_eq!(out.len(), n * len);
            t
        });
        if case == "message" {
            h.run(case, "copy", len, |n| {
                out.clear();
                let t = time(|| copy_n(std::hint::black_box(wire), n, &mut out));
                assert_eq!(out.len(), n * len);
                t
            });
        }
    }
    let json = h.cfg.json;
    h.finish();
    if !json {
        // Every decoded frame is moved by value through the parser's results.
        println!("size_of::<Frame>() = {} bytes", std::mem::size_of::<Frame>());
    }
}
