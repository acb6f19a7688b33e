//! `FrameRef::parse` (in place, from a `&[u8]`) against `Frame::parse_bytes` (owned), on
//! valid frames of every spec method and on many damaged copies of them: the same
//! frame, the same "need more", or the same error, every time.

use bytes::{Bytes, BytesMut};
use warren::wire::{
    BasicDeliver, BasicProperties, ContentHeader, FieldTable, Frame, FrameRef, Method, MethodRef, ShortStr, WireError,
    encode_header, encode_method,
};
use warren_codegen::model::Type;

mod spec_payload;

/// Whole frames to start from: every spec method with its smallest payload, a
/// delivery with names, a header with properties and headers, a body, a heartbeat.
fn seeds() -> Vec<Vec<u8>> {
    let spec = warren_codegen::parse(include_str!("../spec/amqp0-9-1.xml")).expect("the spec parses");
    let mut seeds = Vec::new();
    for class in &spec.classes {
        for m in &class.methods {
            let payload = spec_payload::payload(class, m, |ty| match ty {
                // A one-letter string, so that damage can reach its text.
                Type::ShortStr => vec![1, b'q'],
                Type::Octet => vec![0],
                Type::Short => vec![0; 2],
                Type::Long | Type::LongStr => vec![0; 4],
                Type::Table => vec![0, 0, 0, 7, 1, b'k', b'S', 0, 0, 0, 0],
                Type::LongLong | Type::Timestamp => vec![0; 8],
                Type::Bit => unreachable!(),
            });
            let mut frame = vec![1, 0, 3];
            frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            frame.extend_from_slice(&payload);
            frame.push(0xCE);
            seeds.push(frame);
        }
    }
    let mut buf = BytesMut::new();
    let deliver = BasicDeliver {
        consumer_tag: ShortStr::from_static("amq.ctag-Zx5LQ0mJ3ZJ1y8cUq9Kz3g"),
        delivery_tag: 42,
        redelivered: true,
        exchange: ShortStr::from_static("bench.exchange"),
        routing_key: ShortStr::from_static("bench.routing.key"),
    };
    encode_method(1, &Method::BasicDeliver(deliver), &mut buf);
    seeds.push(buf.split().to_vec());
    let properties = BasicProperties::builder()
        .content_type("application/octet-stream")
        .headers(
            FieldTable::new()
                .with("x-trace-id", "4bf92f35")
                .with("x-retry-count", 3),
        )
        .priority(5)
        .build()
        .expect("properties");
    let header = ContentHeader {
        class_id: 60,
        body_size: 256,
        properties: properties.into(),
    };
    encode_header(1, &header, &mut buf);
    seeds.push(buf.split().to_vec());
    Frame::Body {
        channel: 1,
        payload: Bytes::from(vec![7u8; 256]),
    }
    .encode(&mut buf);
    seeds.push(buf.split().to_vec());
    Frame::Heartbeat.encode(&mut buf);
    seeds.push(buf.split().to_vec());
    seeds
}

/// Both parsers on `input`: equal outcomes.
fn same(input: &[u8], frame_max: u32) -> Result<Option<usize>, WireError> {
    let owned = Frame::parse_bytes(&Bytes::copy_from_slice(input), frame_max);
    let in_place = FrameRef::parse(input, frame_max);
    match (owned, in_place) {
        (Ok(Some((frame, len))), Ok(Some((view, view_len)))) => {
            assert_eq!(view_len, len, "{input:02x?}");
            assert_eq!(view.channel(), frame.channel());
            assert_eq!(view.into_owned(), frame, "{input:02x?}");
            Ok(Some(len))
        }
        (Ok(None), Ok(None)) => Ok(None),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{input:02x?}");
            Err(a)
        }
        (a, b) => panic!("owned {a:?}, in place {b:?} for {input:02x?}"),
    }
}

#[test]
fn every_seed_reads_the_same_in_place() {
    for seed in seeds() {
        assert_eq!(same(&seed, 0), Ok(Some(seed.len())), "{seed:02x?}");
        // Every prefix needs more.
        for end in 0..seed.len() {
            assert_eq!(same(&seed[..end], 0), Ok(None));
        }
    }
}

#[test]
fn damaged_frames_are_refused_or_read_alike() {
    // xorshift64: a fixed sequence, so a failure reproduces.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut refused) = (0, 0);
    for seed in seeds() {
        for _ in 0..300 {
            let mut input = seed.clone();
            for _ in 0..1 + next() % 3 {
                let r = next();
                let at = (r >> 8) as usize % input.len().max(1);
                match r % 4 {
                    0 | 1 if !input.is_empty() => input[at] ^= 1 << ((r >> 40) % 8),
                    2 if !input.is_empty() => input[at] = (r >> 32) as u8,
                    _ => input.insert(at.min(input.len()), (r >> 24) as u8),
                }
            }
            for frame_max in [0, 4096, 64] {
                match same(&input, frame_max) {
                    Ok(Some(_)) => ok += 1,
                    Ok(None) => {}
                    Err(_) => refused += 1,
                }
            }
        }
    }
    // Both kinds of outcome were compared, many times.
    assert!(ok > 1000 && refused > 1000, "ok {ok}, refused {refused}");
}

#[test]
fn a_delivery_reads_as_views_of_the_input() {
    let mut buf = BytesMut::new();
    let deliver = BasicDeliver {
        consumer_tag: ShortStr::from_static("ctag"),
        delivery_tag: 7,
        redelivered: false,
        exchange: ShortStr::from_static("x"),
        routing_key: ShortStr::from_static("rk"),
    };
    encode_method(3, &Method::BasicDeliver(deliver.clone()), &mut buf);
    let input = buf.to_vec();
    let Some((FrameRef::Method { channel: 3, method }, len)) = FrameRef::parse(&input, 0).unwrap() else {
        panic!("not a method frame");
    };
    assert_eq!(len, input.len());
    let MethodRef::BasicDeliver(d) = &method else {
        panic!("{method:?}")
    };
    assert_eq!(
        (d.consumer_tag, d.delivery_tag, d.exchange, d.routing_key),
        ("ctag", 7, "x", "rk")
    );
    let inside = input.as_ptr_range();
    assert!(inside.contains(&d.routing_key.as_ptr()), "a view, not a copy");
    assert_eq!(method.name(), "basic.deliver");
    assert_eq!(method.into_owned(), Method::BasicDeliver(deliver));
}
