//! Incremental parsing: a stream of frames fed in pieces (split at every byte offset,
//! one byte at a time, in random chunk sizes) decodes to the same frames as the whole
//! stream; and body payloads and strings are zero-copy slices of the read buffer.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use warren::wire::{
    BasicDeliver, BasicProperties, ChannelClose, ConnectionTune, FieldArray, FieldTable, FieldValue, Frame, Method,
    ShortStr, encode_content, encode_method,
};

const FRAME_MAX: u32 = 96;

/// A stream with every frame kind: methods on several channels, heartbeats, a content
/// header with several properties, a body split over several body frames (frame_max 96),
/// an empty body (header, no body frame), and a body frame of exactly frame_max bytes.
fn synthetic_stream() -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_method(
        0,
        &Method::ConnectionTune(ConnectionTune {
            channel_max: 2047,
            frame_max: FRAME_MAX,
            heartbeat: 60,
        }),
        &mut buf,
    );
    Frame::Heartbeat.encode(&mut buf);
    let deliver = |tag: u64| {
        Method::BasicDeliver(BasicDeliver {
            consumer_tag: ShortStr::from_static("ctag"),
            delivery_tag: tag,
            redelivered: tag % 2 == 0,
            exchange: ShortStr::from_static("ex"),
            routing_key: ShortStr::from_static("rk.é"),
        })
    };
    let mut headers = FieldTable::new();
    headers.insert(ShortStr::from_static("x-n"), 7i32);
    headers.insert(
        ShortStr::from_static("x-a"),
        FieldArray(vec![
            FieldValue::from("s"),
            FieldValue::Table(FieldTable::new()),
            FieldValue::Void,
        ]),
    );
    let properties = BasicProperties {
        content_type: Some(ShortStr::from_static("application/octet-stream")),
        headers: Some(headers),
        delivery_mode: Some(2),
        timestamp: Some(1_700_000_000),
        message_id: Some(ShortStr::from_static("m-1")),
        ..BasicProperties::default()
    };
    // 200 bytes over frame_max 96: body frames of 88, 88, 24. The header frame is 94 bytes.
    encode_method(1, &deliver(1), &mut buf);
    let body: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
    encode_content(1, &properties, &body, FRAME_MAX, &mut buf);
    // Interleaved with another channel and a heartbeat.
    encode_method(2, &deliver(2), &mut buf);
    Frame::Heartbeat.encode(&mut buf);
    encode_content(2, &BasicProperties::default(), b"", FRAME_MAX, &mut buf);
    encode_method(3, &deliver(3), &mut buf);
    encode_content(3, &BasicProperties::default(), &[0x5A; 88], FRAME_MAX, &mut buf);
    encode_method(
        2,
        &Method::ChannelClose(ChannelClose {
            reply_code: 406,
            reply_text: ShortStr::from_static("PRECONDITION_FAILED"),
            class_id: 60,
            method_id: 40,
        }),
        &mut buf,
    );
    buf.to_vec()
}

/// Parses every complete frame in `buf`, panicking on an error.
fn drain(buf: &mut BytesMut, frame_max: u32, out: &mut Vec<Frame>) {
    while let Some(frame) = Frame::parse(buf, frame_max).expect("parse error") {
        out.push(frame);
    }
}

fn parse_whole(stream: &[u8], frame_max: u32) -> Vec<Frame> {
    let mut buf = BytesMut::from(stream);
    let mut out = Vec::new();
    drain(&mut buf, frame_max, &mut out);
    assert!(buf.is_empty());
    out
}

/// Feeds `stream` in chunks of the given sizes (cycled), parsing after every chunk.
fn parse_chunked(stream: &[u8], frame_max: u32, sizes: &[usize]) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at == stream.len() {
            break;
        }
        let end = (at + size.max(&1)).min(stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        drain(&mut buf, frame_max, &mut out);
    }
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    out
}

fn server_capture() -> &'static [u8] {
    include_bytes!("data/rabbitmq-session.server.bin")
}

fn client_capture() -> &'static [u8] {
    &include_bytes!("data/rabbitmq-session.client.bin")[8..]
}

#[test]
fn synthetic_stream_has_every_frame_kind() {
    let frames = parse_whole(&synthetic_stream(), FRAME_MAX);
    let count = |f: fn(&Frame) -> bool| frames.iter().filter(|x| f(x)).count();
    assert_eq!(count(|f| matches!(f, Frame::Method { .. })), 5);
    assert_eq!(count(|f| matches!(f, Frame::Header { .. })), 3);
    assert_eq!(count(|f| matches!(f, Frame::Body { .. })), 4);
    assert_eq!(count(|f| matches!(f, Frame::Heartbeat)), 2);
    // The 200-byte body came in three frames, in order.
    let body: Vec<u8> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Body { channel: 1, payload } => Some(payload.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(body, (0..200u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
    // Every frame respects frame_max.
    let mut stream = &synthetic_stream()[..];
    while !stream.is_empty() {
        let size = u32::from_be_bytes(stream[3..7].try_into().unwrap()) as usize + 8;
        assert!(size <= FRAME_MAX as usize, "a frame of {size} bytes");
        stream = &stream[size..];
    }
}

#[test]
fn split_in_two_at_every_offset() {
    for (name, stream, frame_max) in [
        ("synthetic", synthetic_stream(), FRAME_MAX),
        ("server", server_capture().to_vec(), 4096),
    ] {
        let whole = parse_whole(&stream, frame_max);
        for at in 0..=stream.len() {
            let mut buf = BytesMut::from(&stream[..at]);
            let mut out = Vec::new();
            drain(&mut buf, frame_max, &mut out);
            assert_eq!(out[..], whole[..out.len()], "{name}: first part up to {at}");
            buf.extend_from_slice(&stream[at..]);
            drain(&mut buf, frame_max, &mut out);
            assert!(buf.is_empty());
            assert_eq!(out, whole, "{name}: split at {at}");
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    for (stream, frame_max) in [
        (synthetic_stream(), FRAME_MAX),
        (server_capture().to_vec(), 4096),
        (client_capture().to_vec(), 4096),
    ] {
        let whole = parse_whole(&stream, frame_max);
        assert_eq!(parse_chunked(&stream, frame_max, &[1]), whole);
        // Ok(None) until the last byte of each frame: count the frames seen after each byte.
        let mut buf = BytesMut::new();
        let mut seen = 0;
        for (i, byte) in stream.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            match Frame::parse(&mut buf, frame_max).unwrap() {
                Some(frame) => {
                    assert_eq!(frame, whole[seen]);
                    assert_eq!(*byte, 0xCE, "a frame completed at offset {i} without its frame-end");
                    assert!(buf.is_empty());
                    seen += 1;
                }
                None => assert!(!buf.is_empty()),
            }
        }
        assert_eq!(seen, whole.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_chunk_sizes(sizes in prop::collection::vec(1usize..300, 1..40), which in 0usize..3) {
        let (stream, frame_max) = match which {
            0 => (synthetic_stream(), FRAME_MAX),
            1 => (server_capture().to_vec(), 4096),
            _ => (client_capture().to_vec(), 4096),
        };
        prop_assert_eq!(parse_chunked(&stream, frame_max, &sizes), parse_whole(&stream, frame_max));
    }
}

fn contains(range: &Range<usize>, b: &[u8]) -> bool {
    b.is_empty() || (range.start <= b.as_ptr() as usize && b.as_ptr() as usize + b.len() <= range.end)
}

/// Parses the whole stream from one buffer and checks that bodies, strings and long
/// strings point into that buffer's memory (no copies).
fn assert_zero_copy(stream: &[u8], frame_max: u32) -> usize {
    let mut buf = BytesMut::from(stream);
    let base = buf.as_ptr() as usize;
    let range = base..base + buf.len();
    let mut offset = 0;
    let mut checked = 0;
    while let Some(frame) = Frame::parse(&mut buf, frame_max).unwrap() {
        let size = u32::from_be_bytes(stream[offset + 3..offset + 7].try_into().unwrap()) as usize;
        match &frame {
            Frame::Body { payload, .. } => {
                // Exactly the payload bytes of this frame in the original buffer.
                assert_eq!(
                    payload.as_ptr() as usize,
                    base + offset + 7,
                    "body frame at {offset} was copied"
                );
                assert_eq!(payload.len(), size);
                checked += 1;
            }
            Frame::Method {
                method: Method::BasicDeliver(d),
                ..
            } => {
                for s in [&d.consumer_tag, &d.exchange, &d.routing_key] {
                    assert!(contains(&range, s.as_bytes()), "short string {s:?} was copied");
                }
                checked += 1;
            }
            Frame::Method {
                method: Method::ConnectionStart(s),
                ..
            } => {
                assert!(contains(&range, &s.mechanisms) && contains(&range, &s.locales));
                for (key, value) in s.server_properties.iter() {
                    assert!(contains(&range, key.as_bytes()));
                    if let FieldValue::LongStr(v) = value {
                        assert!(contains(&range, v), "table value {key} was copied");
                    }
                }
                checked += 1;
            }
            Frame::Header { header, .. } => {
                if let Some(ct) = &header.properties.content_type {
                    assert!(contains(&range, ct.as_bytes()), "content-type was copied");
                    checked += 1;
                }
            }
            _ => {}
        }
        offset += size + 8;
    }
    assert_eq!(offset, stream.len());
    checked
}

#[test]
fn bodies_and_strings_are_zero_copy() {
    assert!(assert_zero_copy(&synthetic_stream(), FRAME_MAX) >= 8);
    assert!(assert_zero_copy(server_capture(), 4096) >= 10);
    assert!(assert_zero_copy(client_capture(), 4096) >= 5);
}

#[test]
fn parse_bytes_is_zero_copy_and_does_not_consume() {
    let src = Bytes::from(synthetic_stream());
    let whole = parse_whole(&src, FRAME_MAX);
    let mut at = 0;
    let mut frames = Vec::new();
    while at < src.len() {
        let rest = src.slice(at..);
        let (frame, len) = Frame::parse_bytes(&rest, FRAME_MAX).unwrap().expect("a whole frame");
        if let Frame::Body { payload, .. } = &frame {
            assert_eq!(payload.as_ptr(), src[at + 7..].as_ptr());
        }
        frames.push(frame);
        at += len;
    }
    assert_eq!(frames, whole);
}

#[test]
fn frames_parsed_while_more_arrives_keep_their_bytes() {
    // Bytes of a frame taken off the buffer stay valid and unchanged while the buffer
    // is refilled and reused.
    let stream = synthetic_stream();
    let mut buf = BytesMut::with_capacity(16);
    let mut out = Vec::new();
    for chunk in stream.chunks(13) {
        buf.extend_from_slice(chunk);
        drain(&mut buf, FRAME_MAX, &mut out);
        // Overwrite the spare capacity to catch aliasing with freed space.
        let spare = buf.capacity() - buf.len();
        let len = buf.len();
        buf.resize(len + spare, 0xEE);
        buf.truncate(len);
    }
    assert_eq!(out, parse_whole(&stream, FRAME_MAX));
}
