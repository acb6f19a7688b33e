//! One test per class of malformed input: the exact `WireError` variant, the reply code
//! the connection closes with, and that `Frame::parse` leaves the read buffer as it was.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use warren::wire::{FRAME_OVERHEAD, Frame, MAX_NESTING, ReplyCode, WireError, parse_protocol_header, parse_table};

const FRAME_ERROR: ReplyCode = ReplyCode(501);
const SYNTAX_ERROR: ReplyCode = ReplyCode(502);
const COMMAND_INVALID: ReplyCode = ReplyCode(503);

/// `type channel size payload 0xCE`.
fn frame(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![frame_type];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(0xCE);
    v
}

fn method_frame(channel: u16, payload: &[u8]) -> Vec<u8> {
    frame(1, channel, payload)
}

/// A content header payload: class 60, `weight`, body size 0, then `rest` (flags and properties).
fn header_payload(weight: u16, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![0x00, 0x3C];
    v.extend_from_slice(&weight.to_be_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(rest);
    v
}

fn shortstr(s: &[u8]) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

fn longstr(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// A connection.start-ok payload whose client-properties table is `table` (already
/// length-prefixed), with valid fields after it.
fn start_ok_with_table(table: &[u8]) -> Vec<u8> {
    [
        &[0x00, 0x0A, 0x00, 0x0B][..],
        table,
        &shortstr(b"PLAIN"),
        &longstr(b"\0guest\0guest"),
        &shortstr(b"en_US"),
    ]
    .concat()
}

/// Parses `bytes` with `Frame::parse`, expecting an error, and checks that
/// `Frame::parse_bytes` gives the same one. (That the buffer is left unchanged is
/// checked for every error class at once in `frame_parse_leaves_the_buffer_unchanged`.)
fn parse_err(bytes: &[u8], frame_max: u32) -> WireError {
    let mut buf = BytesMut::from(bytes);
    let err = match Frame::parse(&mut buf, frame_max) {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    };
    let again = Frame::parse_bytes(&Bytes::copy_from_slice(bytes), frame_max);
    assert_eq!(again.err(), Some(err.clone()), "parse_bytes disagrees");
    err
}

/// Parses `bytes` with `Frame::parse`, expecting an error; `Err(what went wrong)` when
/// the buffer does not hold what the contract says afterwards: everything after a framing
/// error, everything after the bad frame otherwise.
fn buffer_after_error(bytes: &[u8], frame_max: u32) -> Result<WireError, String> {
    let mut buf = BytesMut::from(bytes);
    let err = match Frame::parse(&mut buf, frame_max) {
        Err(e) => e,
        Ok(other) => return Err(format!("no error: {other:?}")),
    };
    let expected = if err.is_framing_error() {
        bytes
    } else {
        let size = u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]) as usize;
        &bytes[size + FRAME_OVERHEAD..]
    };
    if &buf[..] != expected {
        return Err(format!(
            "{err:?}: buffer now holds {} of its {} bytes, expected {}",
            buf.len(),
            bytes.len(),
            expected.len()
        ));
    }
    Ok(err)
}

fn assert_err(bytes: &[u8], frame_max: u32, expected: WireError, code: ReplyCode) {
    let err = parse_err(bytes, frame_max);
    assert_eq!(err, expected);
    assert_eq!(err.reply_code(), code, "{err}");
    assert!(!err.to_string().is_empty());
}

fn tune_payload() -> Vec<u8> {
    vec![0x00, 0x0A, 0x00, 0x1E, 0x07, 0xFF, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3C]
}

#[test]
fn truncated_frame_header_or_payload_needs_more() {
    let whole = method_frame(0, &tune_payload());
    for cut in 0..whole.len() {
        let mut buf = BytesMut::from(&whole[..cut]);
        assert_eq!(Frame::parse(&mut buf, 4096), Ok(None), "cut at {cut}");
        assert_eq!(&buf[..], &whole[..cut], "cut at {cut}: buffer changed");
        assert_eq!(
            Frame::parse_bytes(&Bytes::copy_from_slice(&whole[..cut]), 4096),
            Ok(None)
        );
    }
    let mut buf = BytesMut::from(&whole[..]);
    assert!(matches!(Frame::parse(&mut buf, 4096), Ok(Some(Frame::Method { .. }))));
    assert!(buf.is_empty());
}

#[test]
fn truncated_field_inside_a_complete_frame() {
    // connection.tune cut after channel-max and half of frame-max: the frame is complete
    // (its size says 8), the payload is not.
    let payload = &tune_payload()[..8];
    assert_err(&method_frame(0, payload), 0, WireError::Truncated, SYNTAX_ERROR);
    // Too short for even the class and method ids.
    assert_err(
        &method_frame(0, &[0x00, 0x0A, 0x00]),
        0,
        WireError::Truncated,
        SYNTAX_ERROR,
    );
    assert_err(&method_frame(0, &[]), 0, WireError::Truncated, SYNTAX_ERROR);
    // A content header too short for its fixed part, or for a flagged property.
    assert_err(
        &frame(2, 1, &[0x00, 0x3C, 0x00, 0x00, 0x00]),
        0,
        WireError::Truncated,
        SYNTAX_ERROR,
    );
    assert_err(
        &frame(2, 1, &header_payload(0, &[0x80])),
        0,
        WireError::Truncated,
        SYNTAX_ERROR,
    );
    assert_err(
        &frame(2, 1, &header_payload(0, &[0x80, 0x00])),
        0,
        WireError::Truncated,
        SYNTAX_ERROR,
    );
    // delivery-mode flagged, octet missing.
    assert_err(
        &frame(2, 1, &header_payload(0, &[0x10, 0x00])),
        0,
        WireError::Truncated,
        SYNTAX_ERROR,
    );
    // basic.deliver missing its delivery-tag bytes.
    let deliver = [&[0x00, 0x3C, 0x00, 0x3C][..], &shortstr(b"c"), &[0, 0, 0, 0, 0, 1]].concat();
    assert_err(&method_frame(1, &deliver), 0, WireError::Truncated, SYNTAX_ERROR);
}

#[test]
fn oversized_frame_is_refused_from_its_header_alone() {
    // Only the 7-byte header of a frame claiming 4 GiB: refused at once, and the buffer
    // is neither grown nor moved (nothing is reserved for the announced size).
    let header = [0x03, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xF0];
    let mut buf = BytesMut::with_capacity(16);
    buf.extend_from_slice(&header);
    let (capacity, ptr) = (buf.capacity(), buf.as_ptr());
    assert!(matches!(
        Frame::parse(&mut buf, 131_072),
        Err(WireError::FrameTooLarge { .. })
    ));
    assert_eq!((&buf[..], buf.capacity(), buf.as_ptr()), (&header[..], capacity, ptr));
    assert_err(
        &header,
        131_072,
        WireError::FrameTooLarge {
            size: 0xFFFF_FFF0 + 8,
            max: 131_072,
        },
        FRAME_ERROR,
    );
    // frame_max counts the whole frame (7 header bytes, payload, frame-end): a frame of
    // exactly frame_max bytes passes, one byte more does not.
    let max = 4096u32;
    let fits = frame(3, 1, &vec![0xAB; max as usize - 8]);
    let mut buf = BytesMut::from(&fits[..]);
    assert!(matches!(Frame::parse(&mut buf, max), Ok(Some(Frame::Body { .. }))));
    let too_big = frame(3, 1, &vec![0xAB; max as usize - 7]);
    assert_err(
        &too_big,
        max,
        WireError::FrameTooLarge {
            size: u64::from(max) + 1,
            max,
        },
        FRAME_ERROR,
    );
    // The same, with only the header arrived.
    assert_err(
        &too_big[..7],
        max,
        WireError::FrameTooLarge {
            size: u64::from(max) + 1,
            max,
        },
        FRAME_ERROR,
    );
    // The largest size field with u32::MAX as frame_max.
    assert_err(
        &[0x01, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        u32::MAX,
        WireError::FrameTooLarge {
            size: u64::from(u32::MAX) + 8,
            max: u32::MAX,
        },
        FRAME_ERROR,
    );
}

#[test]
fn wrong_frame_end() {
    let mut bytes = frame(8, 0, &[]);
    *bytes.last_mut().unwrap() = 0xCD;
    assert_err(&bytes, 0, WireError::BadFrameEnd { found: 0xCD }, FRAME_ERROR);
    let mut bytes = method_frame(0, &tune_payload());
    *bytes.last_mut().unwrap() = 0x00;
    assert_err(&bytes, 0, WireError::BadFrameEnd { found: 0x00 }, FRAME_ERROR);
    // A size one too small makes the last payload byte the frame-end.
    let mut bytes = method_frame(0, &tune_payload());
    bytes[6] -= 1;
    assert_err(&bytes, 0, WireError::BadFrameEnd { found: 0x3C }, FRAME_ERROR);
}

#[test]
fn unknown_frame_type() {
    for frame_type in [0u8, 4, 5, 7, 9, 0x41, 0xCE, 0xFF] {
        let bytes = frame(frame_type, 0, &[]);
        assert_err(&bytes, 0, WireError::UnknownFrameType { frame_type }, FRAME_ERROR);
        // Known from the 7-byte header already.
        assert_err(&bytes[..7], 0, WireError::UnknownFrameType { frame_type }, FRAME_ERROR);
    }
    // A server refusing our version answers with its own protocol header; read as a
    // frame that is type 'A'.
    assert_err(
        b"AMQP\x00\x00\x09\x01",
        0,
        WireError::UnknownFrameType { frame_type: b'A' },
        FRAME_ERROR,
    );
}

#[test]
fn bad_protocol_header() {
    let found = *b"AMQP\x00\x00\x08\x00";
    let err = parse_protocol_header(&found).unwrap_err();
    assert_eq!(err, WireError::BadProtocolHeader { found });
    assert_eq!(err.reply_code(), FRAME_ERROR);
    let found = *b"HTTP/1.1";
    assert_eq!(
        parse_protocol_header(&found),
        Err(WireError::BadProtocolHeader { found })
    );
}

#[test]
fn unknown_class_or_method() {
    for (class_id, method_id) in [(10u16, 99u16), (99, 10), (0, 0), (60, 41), (85, 12), (0xFFFF, 0xFFFF)] {
        let payload = [class_id.to_be_bytes(), method_id.to_be_bytes()].concat();
        assert_err(
            &method_frame(1, &payload),
            0,
            WireError::UnknownMethod { class_id, method_id },
            COMMAND_INVALID,
        );
        // With arguments after the ids too.
        let payload = [&payload[..], &[1, 2, 3, 4]].concat();
        assert_err(
            &method_frame(1, &payload),
            0,
            WireError::UnknownMethod { class_id, method_id },
            COMMAND_INVALID,
        );
    }
}

#[test]
fn undefined_bits_in_a_bits_octet() {
    // basic.deliver: redelivered is the only bit (bit 0).
    let deliver = |bits: u8| {
        [
            &[0x00, 0x3C, 0x00, 0x3C][..],
            &shortstr(b"c"),
            &[0, 0, 0, 0, 0, 0, 0, 1],
            &[bits],
            &shortstr(b""),
            &shortstr(b"q"),
        ]
        .concat()
    };
    assert!(Frame::parse(&mut BytesMut::from(&method_frame(1, &deliver(1))[..]), 0).is_ok());
    for bits in [0x02u8, 0x03, 0x80, 0xFF] {
        assert_err(
            &method_frame(1, &deliver(bits)),
            0,
            WireError::BadBits { bits },
            SYNTAX_ERROR,
        );
    }
    // basic.publish: mandatory and immediate (bits 0 and 1).
    let publish = |bits: u8| {
        [
            &[0x00, 0x3C, 0x00, 0x28, 0x00, 0x00][..],
            &shortstr(b"x"),
            &shortstr(b"k"),
            &[bits],
        ]
        .concat()
    };
    assert!(Frame::parse(&mut BytesMut::from(&method_frame(1, &publish(3))[..]), 0).is_ok());
    assert_err(
        &method_frame(1, &publish(0x04)),
        0,
        WireError::BadBits { bits: 0x04 },
        SYNTAX_ERROR,
    );
    // exchange.declare: five bits (passive, durable, auto-delete, internal, no-wait).
    let declare = |bits: u8| {
        [
            &[0x00, 0x28, 0x00, 0x0A, 0x00, 0x00][..],
            &shortstr(b"x"),
            &shortstr(b"direct"),
            &[bits],
            &[0, 0, 0, 0],
        ]
        .concat()
    };
    assert!(Frame::parse(&mut BytesMut::from(&method_frame(1, &declare(0x1F))[..]), 0).is_ok());
    assert_err(
        &method_frame(1, &declare(0x20)),
        0,
        WireError::BadBits { bits: 0x20 },
        SYNTAX_ERROR,
    );
}

#[test]
fn bad_property_flags() {
    // Bit 0: the continuation bit (a second flags word, which 0-9-1 basic never needs).
    assert_err(
        &frame(2, 1, &header_payload(0, &[0x00, 0x01])),
        0,
        WireError::BadPropertyFlags { flags: 0x0001 },
        SYNTAX_ERROR,
    );
    // Bit 1: no property has it (basic has 14 properties, bits 15 to 2).
    assert_err(
        &frame(2, 1, &header_payload(0, &[0x00, 0x02])),
        0,
        WireError::BadPropertyFlags { flags: 0x0002 },
        SYNTAX_ERROR,
    );
    // With a defined flag as well.
    assert_err(
        &frame(2, 1, &header_payload(0, &[0x10, 0x03, 0x02])),
        0,
        WireError::BadPropertyFlags { flags: 0x1003 },
        SYNTAX_ERROR,
    );
    // Bit 2 (cluster-id) is defined.
    let ok = frame(2, 1, &header_payload(0, &[0x00, 0x04, 0x00]));
    assert!(Frame::parse(&mut BytesMut::from(&ok[..]), 0).unwrap().is_some());
}

#[test]
fn non_zero_content_weight() {
    for weight in [1u16, 0x100, 0xFFFF] {
        assert_err(
            &frame(2, 1, &header_payload(weight, &[0, 0])),
            0,
            WireError::BadContentWeight { weight },
            SYNTAX_ERROR,
        );
    }
}

#[test]
fn invalid_utf8_in_a_shortstr() {
    for bad in [
        &[0xFFu8][..],
        &[0xC3, 0x28],
        &[b'a', 0xE2, 0x82],
        &[0xED, 0xA0, 0x80], /* surrogate */
    ] {
        // basic.consume-ok's consumer-tag.
        let payload = [&[0x00, 0x3C, 0x00, 0x15][..], &shortstr(bad)].concat();
        assert_err(&method_frame(1, &payload), 0, WireError::InvalidUtf8, SYNTAX_ERROR);
        // A property: content-type.
        let header = header_payload(0, &[&[0x80, 0x00][..], &shortstr(bad)].concat());
        assert_err(&frame(2, 1, &header), 0, WireError::InvalidUtf8, SYNTAX_ERROR);
    }
}

#[test]
fn invalid_utf8_in_a_table_key() {
    let table = [&[0x00, 0x00, 0x00, 0x04][..], &[0x02, 0xC3, 0x28], b"V"].concat();
    assert_err(
        &method_frame(0, &start_ok_with_table(&table)),
        0,
        WireError::InvalidUtf8,
        SYNTAX_ERROR,
    );
    assert_eq!(parse_table(&Bytes::from(table)), Err(WireError::InvalidUtf8));
    // In a nested table.
    let inner = [&[0x00, 0x00, 0x00, 0x03][..], &[0x01, 0x80], b"V"].concat();
    let outer = [
        &((inner.len() + 3) as u32).to_be_bytes()[..],
        &[0x01, b'n'],
        b"F",
        &inner,
    ]
    .concat();
    assert_eq!(parse_table(&Bytes::from(outer.clone())), Err(WireError::InvalidUtf8));
    assert_err(
        &method_frame(0, &start_ok_with_table(&outer)),
        0,
        WireError::InvalidUtf8,
        SYNTAX_ERROR,
    );
}

#[test]
fn unknown_field_table_tag() {
    for tag in [b'Z', b'U', b'L', 0x00, 0xFF] {
        let table = [&[0x00, 0x00, 0x00, 0x03][..], &[0x01, b'k'], &[tag]].concat();
        assert_err(
            &method_frame(0, &start_ok_with_table(&table)),
            0,
            WireError::UnknownFieldType { tag },
            SYNTAX_ERROR,
        );
        assert_eq!(
            parse_table(&Bytes::from(table)),
            Err(WireError::UnknownFieldType { tag })
        );
        // Inside an array.
        let table = [
            &[0x00, 0x00, 0x00, 0x08][..],
            &[0x01, b'a'],
            b"A",
            &[0x00, 0x00, 0x00, 0x01],
            &[tag],
        ]
        .concat();
        assert_eq!(
            parse_table(&Bytes::from(table)),
            Err(WireError::UnknownFieldType { tag })
        );
    }
}

/// `levels` tables nested in one another through entries `"" => F <table>`, the
/// outermost first; built front to back (each level's size is known: 6 per level inside).
fn nested_tables(levels: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(levels * 6 + 4);
    for level in (1..levels).rev() {
        // This table holds one entry: empty key, tag 'F', and `level` more tables.
        let size = (level - 1) * 6 + 4 + 2;
        v.extend_from_slice(&(size as u32).to_be_bytes());
        v.extend_from_slice(&[0x00, b'F']);
    }
    v.extend_from_slice(&[0, 0, 0, 0]); // the innermost, empty table
    v
}

/// A table holding `"" => A` then `levels - 1` arrays nested through 'A' values.
fn nested_arrays(levels: usize) -> Vec<u8> {
    // Array nesting: each array holds one value: tag 'A' and the next array (5 bytes a level).
    let mut v = Vec::with_capacity(levels * 5 + 10);
    let arrays = levels - 1;
    let inner_size = |k: usize| (k - 1) * 5 + 4; // k arrays, innermost empty
    v.extend_from_slice(&((inner_size(arrays) + 2) as u32).to_be_bytes());
    v.extend_from_slice(&[0x00, b'A']);
    for k in (1..arrays).rev() {
        v.extend_from_slice(&((inner_size(k + 1) - 4) as u32).to_be_bytes());
        v.push(b'A');
    }
    v.extend_from_slice(&[0, 0, 0, 0]);
    v
}

#[test]
fn nested_table_builders_are_well_formed() {
    // Shallow ones parse, which checks the builders' lengths.
    for levels in 1..5 {
        let table = parse_table(&Bytes::from(nested_tables(levels))).unwrap();
        assert_eq!(table.len(), usize::from(levels > 1));
    }
    for levels in 2..5 {
        parse_table(&Bytes::from(nested_arrays(levels))).unwrap();
    }
}

#[test]
fn nesting_up_to_max_nesting_is_accepted() {
    // MAX_NESTING levels of tables, the outermost included.
    let bytes = nested_tables(MAX_NESTING);
    assert!(parse_table(&Bytes::from(bytes.clone())).is_ok());
    let frame = method_frame(0, &start_ok_with_table(&bytes));
    assert!(Frame::parse(&mut BytesMut::from(&frame[..]), 0).unwrap().is_some());
    assert!(parse_table(&Bytes::from(nested_arrays(MAX_NESTING))).is_ok());
}

#[test]
fn nesting_deeper_than_max_nesting() {
    for levels in [MAX_NESTING + 1, MAX_NESTING + 2, 1000] {
        let bytes = nested_tables(levels);
        assert_eq!(
            parse_table(&Bytes::from(bytes.clone())),
            Err(WireError::NestingTooDeep),
            "{levels} tables"
        );
        assert_err(
            &method_frame(0, &start_ok_with_table(&bytes)),
            0,
            WireError::NestingTooDeep,
            SYNTAX_ERROR,
        );
        assert_eq!(
            parse_table(&Bytes::from(nested_arrays(levels))),
            Err(WireError::NestingTooDeep),
            "{levels} arrays"
        );
        // As the headers property of a content header.
        let header = header_payload(0, &[&[0x20, 0x00][..], &bytes].concat());
        assert_err(&frame(2, 1, &header), 0, WireError::NestingTooDeep, SYNTAX_ERROR);
    }
}

#[test]
fn hundred_thousand_levels_fail_fast_without_overflowing_the_stack() {
    let levels = 100_000;
    let start = Instant::now();
    let tables = nested_tables(levels);
    assert_eq!(
        parse_table(&Bytes::from(tables.clone())),
        Err(WireError::NestingTooDeep)
    );
    assert_eq!(
        parse_table(&Bytes::from(nested_arrays(levels))),
        Err(WireError::NestingTooDeep)
    );
    assert_err(
        &method_frame(0, &start_ok_with_table(&tables)),
        0,
        WireError::NestingTooDeep,
        SYNTAX_ERROR,
    );
    // Run once more on a small stack: the parser must not recurse per level of input.
    let small = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || parse_table(&Bytes::from(tables)))
        .unwrap()
        .join()
        .expect("parser overflowed a 256 KiB stack");
    assert_eq!(small, Err(WireError::NestingTooDeep));
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
}

#[test]
fn lengths_pointing_past_the_frame() {
    // Table length past the end of the payload.
    let table = [&[0x00, 0x00, 0x01, 0x00][..], &[0x01, b'k', b'V']].concat();
    assert_err(
        &method_frame(0, &start_ok_with_table(&table)),
        0,
        WireError::Truncated,
        SYNTAX_ERROR,
    );
    assert_eq!(parse_table(&Bytes::from(table)), Err(WireError::Truncated));
    let huge = [0xFF, 0xFF, 0xFF, 0xFF];
    assert_eq!(parse_table(&Bytes::copy_from_slice(&huge)), Err(WireError::Truncated));

    // Table length shorter than its last entry: the entry runs past the table.
    let table = [
        &[0x00, 0x00, 0x00, 0x04][..],
        &[0x01, b'k', b'I', 0x00, 0x00, 0x00, 0x01],
    ]
    .concat();
    assert_eq!(parse_table(&Bytes::from(table.clone())), Err(WireError::Truncated));
    assert_eq!(
        parse_table(&Bytes::from(table[..8].to_vec())),
        Err(WireError::Truncated),
        "an I needs 4 bytes, the table holds 1"
    );

    // Longstr length past the end: connection.secure-ok's response.
    let payload = [&[0x00, 0x0A, 0x00, 0x15][..], &[0x00, 0x00, 0x00, 0x10], b"short"].concat();
    assert_err(&method_frame(0, &payload), 0, WireError::Truncated, SYNTAX_ERROR);
    let payload = [&[0x00, 0x0A, 0x00, 0x15][..], &[0xFF, 0xFF, 0xFF, 0xFF]].concat();
    assert_err(&method_frame(0, &payload), 0, WireError::Truncated, SYNTAX_ERROR);
    // Longstr value inside a table.
    let table = [
        &[0x00, 0x00, 0x00, 0x08][..],
        &[0x01, b'k', b'S', 0x00, 0x00, 0x00, 0x09, b'x'],
    ]
    .concat();
    assert_eq!(parse_table(&Bytes::from(table)), Err(WireError::Truncated));

    // Shortstr length past the end: basic.consume-ok's consumer-tag, and a table key.
    let payload = [&[0x00, 0x3C, 0x00, 0x15][..], &[0x0A], b"abc"].concat();
    assert_err(&method_frame(1, &payload), 0, WireError::Truncated, SYNTAX_ERROR);
    let table = [&[0x00, 0x00, 0x00, 0x02][..], &[0x05, b'k']].concat();
    assert_eq!(parse_table(&Bytes::from(table)), Err(WireError::Truncated));
    // A property shortstr past the end of the header payload.
    let header = header_payload(0, &[&[0x80, 0x00][..], &[0xFF], b"text/plain"].concat());
    assert_err(&frame(2, 1, &header), 0, WireError::Truncated, SYNTAX_ERROR);
    // An array length past its table.
    let table = [
        &[0x00, 0x00, 0x00, 0x07][..],
        &[0x01, b'a', b'A', 0x00, 0x00, 0x00, 0x09],
    ]
    .concat();
    assert_eq!(parse_table(&Bytes::from(table)), Err(WireError::Truncated));
}

#[test]
fn trailing_bytes() {
    let payload = [&tune_payload()[..], &[0x00]].concat();
    assert_err(
        &method_frame(0, &payload),
        0,
        WireError::TrailingBytes { count: 1 },
        SYNTAX_ERROR,
    );
    // A method without arguments, with three extra bytes: connection.close-ok.
    assert_err(
        &method_frame(0, &[0x00, 0x0A, 0x00, 0x33, 1, 2, 3]),
        0,
        WireError::TrailingBytes { count: 3 },
        SYNTAX_ERROR,
    );
    // A content header with bytes after its last property.
    assert_err(
        &frame(2, 1, &header_payload(0, &[0x10, 0x00, 0x02, 0xAA, 0xBB])),
        0,
        WireError::TrailingBytes { count: 2 },
        SYNTAX_ERROR,
    );
    // A standalone table followed by more bytes.
    assert_eq!(
        parse_table(&Bytes::from_static(&[0, 0, 0, 0, 9])),
        Err(WireError::TrailingBytes { count: 1 })
    );
}

#[test]
fn heartbeat_on_a_channel_or_with_a_payload() {
    assert_err(&frame(8, 1, &[]), 0, WireError::BadHeartbeat, FRAME_ERROR);
    assert_err(&frame(8, 0xFFFF, &[]), 0, WireError::BadHeartbeat, FRAME_ERROR);
    assert_err(&frame(8, 0, &[0]), 0, WireError::BadHeartbeat, FRAME_ERROR);
    assert_err(&frame(8, 3, &[1, 2, 3]), 0, WireError::BadHeartbeat, FRAME_ERROR);
}

#[test]
fn a_payload_error_consumes_only_the_bad_frame() {
    // A heartbeat, connection.tune with a trailing byte, then a heartbeat again: the
    // frame after the bad one can still be read (a closing connection waits for close-ok).
    let good = frame(8, 0, &[]);
    let bad = method_frame(0, &[&tune_payload()[..], &[0x00]].concat());
    let mut buf = BytesMut::from(&[&good[..], &bad, &good].concat()[..]);
    assert_eq!(Frame::parse(&mut buf, 0), Ok(Some(Frame::Heartbeat)));
    assert_eq!(Frame::parse(&mut buf, 0), Err(WireError::TrailingBytes { count: 1 }));
    assert_eq!(&buf[..], &good[..], "exactly the bad frame was consumed");
    assert_eq!(Frame::parse(&mut buf, 0), Ok(Some(Frame::Heartbeat)));
    assert_eq!(Frame::parse(&mut buf, 0), Ok(None));
}

#[test]
fn a_framing_error_consumes_nothing() {
    let good = frame(8, 0, &[]);
    let mut bad = frame(8, 0, &[]);
    *bad.last_mut().unwrap() = 0;
    let mut buf = BytesMut::from(&[&good[..], &bad].concat()[..]);
    assert_eq!(Frame::parse(&mut buf, 0), Ok(Some(Frame::Heartbeat)));
    assert_eq!(Frame::parse(&mut buf, 0), Err(WireError::BadFrameEnd { found: 0 }));
    assert_eq!(&buf[..], &bad[..]);
}

/// One bad frame of every error class `Frame::parse` can return.
fn bad_frames() -> Vec<(&'static str, Vec<u8>, u32)> {
    let mut bad_end = frame(8, 0, &[]);
    *bad_end.last_mut().unwrap() = 0;
    vec![
        ("unknown frame type", frame(4, 0, &[]), 0),
        ("frame too large", vec![0x03, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xF0], 4096),
        ("bad frame end", bad_end, 0),
        ("heartbeat on channel 1", frame(8, 1, &[]), 0),
        ("heartbeat with payload", frame(8, 0, &[0]), 0),
        ("unknown method", method_frame(1, &[0x00, 0x0A, 0x00, 0x63]), 0),
        ("truncated field", method_frame(0, &tune_payload()[..8]), 0),
        (
            "trailing bytes",
            method_frame(0, &[&tune_payload()[..], &[0]].concat()),
            0,
        ),
        (
            "bad bits",
            method_frame(1, &[0x00, 0x3C, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 1, 0x02]),
            0,
        ),
        ("bad property flags", frame(2, 1, &header_payload(0, &[0x00, 0x01])), 0),
        ("non-zero weight", frame(2, 1, &header_payload(1, &[0x00, 0x00])), 0),
        (
            "invalid utf-8",
            method_frame(1, &[0x00, 0x3C, 0x00, 0x15, 0x01, 0xFF]),
            0,
        ),
        (
            "unknown field type",
            method_frame(0, &start_ok_with_table(&[0, 0, 0, 3, 1, b'k', b'Z'])),
            0,
        ),
        (
            "nesting too deep",
            method_frame(0, &start_ok_with_table(&nested_tables(MAX_NESTING + 1))),
            0,
        ),
    ]
}

#[test]
fn frame_parse_consumes_what_its_contract_says() {
    // Framing errors leave the buffer as it was; payload errors consume exactly the frame.
    let mut changed = Vec::new();
    for (name, bytes, frame_max) in bad_frames() {
        if let Err(what) = buffer_after_error(&bytes, frame_max) {
            changed.push(format!("{name}: {what}"));
        }
    }
    assert!(
        changed.is_empty(),
        "Frame::parse broke its buffer contract on {} error classes:\n{}",
        changed.len(),
        changed.join("\n")
    );
}

#[test]
fn every_error_maps_to_its_reply_code() {
    use WireError::*;
    let cases = [
        (BadProtocolHeader { found: [0; 8] }, 501),
        (UnknownFrameType { frame_type: 9 }, 501),
        (FrameTooLarge { size: 9, max: 8 }, 501),
        (BadFrameEnd { found: 0 }, 501),
        (BadHeartbeat, 501),
        (
            UnknownMethod {
                class_id: 1,
                method_id: 1,
            },
            503,
        ),
        (Truncated, 502),
        (TrailingBytes { count: 1 }, 502),
        (InvalidUtf8, 502),
        (UnknownFieldType { tag: 0 }, 502),
        (NestingTooDeep, 502),
        (BadBits { bits: 2 }, 502),
        (BadPropertyFlags { flags: 1 }, 502),
        (BadContentWeight { weight: 1 }, 502),
    ];
    for (err, code) in cases {
        assert_eq!(err.reply_code(), ReplyCode(code), "{err:?}");
    }
    assert_eq!(ReplyCode::FRAME_ERROR, FRAME_ERROR);
    assert_eq!(ReplyCode::SYNTAX_ERROR, SYNTAX_ERROR);
    assert_eq!(ReplyCode::COMMAND_INVALID, COMMAND_INVALID);
}

/// Found by `cargo fuzz run frame` (minimized): a method frame with an empty payload.
/// It is refused as Truncated (502), and the frame must stay in the buffer.
#[test]
fn fuzz_frame_empty_method_payload() {
    let bytes = [0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xCE];
    assert_err(&bytes, 0, WireError::Truncated, SYNTAX_ERROR);
    assert_eq!(buffer_after_error(&bytes, 0), Ok(WireError::Truncated));
}

#[test]
fn method_decode_with_an_unrelated_source_copies_instead_of_panicking() {
    // basic.deliver whose payload is not a slice of `src`.
    let payload = [
        0x00, 0x3C, 0x00, 0x3C, 0x01, b'c', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01, b'x', 0x01, b'k',
    ];
    let method = warren::wire::Method::decode(&Bytes::from_static(b"unrelated"), &payload).unwrap();
    let warren::wire::Method::BasicDeliver(d) = method else {
        panic!("{method:?}")
    };
    assert_eq!(
        (
            d.consumer_tag.as_str(),
            d.delivery_tag,
            d.exchange.as_str(),
            d.routing_key.as_str()
        ),
        ("c", 7, "x", "k")
    );
}
