//! Property tests driven by the spec: for every method of `spec/amqp0-9-1.xml`, random
//! valid payloads built from the spec's field layout (by this file's own encoder, not
//! warren's) decode and re-encode to the same bytes. Also content headers with any
//! subset of the basic properties, and field tables with every value type, nested.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use warren::wire::{
    BasicProperties, ContentHeader, Decimal, FieldArray, FieldTable, FieldValue, Frame, FrameRef, MAX_NESTING, Method,
    MethodId, MethodRef, ShortStr, encode_header, encode_table, parse_table,
};
use warren_codegen::model::{Field, Spec, Type};

mod spec_payload;

static SPEC: LazyLock<Spec> =
    LazyLock::new(|| warren_codegen::parse(include_str!("../spec/amqp0-9-1.xml")).expect("the spec parses"));

// ---------------------------------------------------------------------------------
// An independent encoder for field values, written from the spec's type table
// (RabbitMQ's tags), used to build the payloads that warren decodes.

fn put_shortstr(out: &mut Vec<u8>, s: &[u8]) {
    assert!(s.len() <= 255);
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

fn put_longstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn put_table(out: &mut Vec<u8>, table: &FieldTable) {
    let mut body = Vec::new();
    for (key, value) in table.iter() {
        put_shortstr(&mut body, key.as_bytes());
        put_value(&mut body, value);
    }
    put_longstr(out, &body);
}

fn put_value(out: &mut Vec<u8>, value: &FieldValue) {
    match value {
        FieldValue::Bool(v) => out.extend_from_slice(&[b't', u8::from(*v)]),
        FieldValue::I8(v) => out.extend_from_slice(&[b'b', *v as u8]),
        FieldValue::U8(v) => out.extend_from_slice(&[b'B', *v]),
        FieldValue::I16(v) => {
            out.push(b's');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::U16(v) => {
            out.push(b'u');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::I32(v) => {
            out.push(b'I');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::U32(v) => {
            out.push(b'i');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::I64(v) => {
            out.push(b'l');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::F32(v) => {
            out.push(b'f');
            out.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        FieldValue::F64(v) => {
            out.push(b'd');
            out.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        FieldValue::Decimal(d) => {
            out.extend_from_slice(&[b'D', d.scale]);
            out.extend_from_slice(&d.value.to_be_bytes());
        }
        FieldValue::LongStr(s) => {
            out.push(b'S');
            put_longstr(out, s);
        }
        FieldValue::Array(a) => {
            out.push(b'A');
            let mut body = Vec::new();
            for v in &a.0 {
                put_value(&mut body, v);
            }
            put_longstr(out, &body);
        }
        FieldValue::Timestamp(v) => {
            out.push(b'T');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::Table(t) => {
            out.push(b'F');
            put_table(out, t);
        }
        FieldValue::Void => out.push(b'V'),
        FieldValue::Bytes(b) => {
            out.push(b'x');
            put_longstr(out, b);
        }
    }
}

/// Equality that compares floats by their bits (so NaN equals the same NaN).
fn same_value(a: &FieldValue, b: &FieldValue) -> bool {
    match (a, b) {
        (FieldValue::F32(x), FieldValue::F32(y)) => x.to_bits() == y.to_bits(),
        (FieldValue::F64(x), FieldValue::F64(y)) => x.to_bits() == y.to_bits(),
        (FieldValue::Array(x), FieldValue::Array(y)) => {
            x.0.len() == y.0.len() && x.0.iter().zip(&y.0).all(|(x, y)| same_value(x, y))
        }
        (FieldValue::Table(x), FieldValue::Table(y)) => same_table(x, y),
        _ => a == b,
    }
}

fn same_table(a: &FieldTable, b: &FieldTable) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

// ---------------------------------------------------------------------------------
// Strategies.

/// UTF-8 text of at most `max` bytes, cut at a character boundary.
fn utf8(max: usize) -> impl Strategy<Value = String> {
    // Character vectors rather than regex strategies: much faster in debug builds.
    let chars = |c: BoxedStrategy<char>, len: std::ops::Range<usize>| {
        prop::collection::vec(c, len).prop_map(|v| v.into_iter().collect::<String>())
    };
    prop_oneof![
        4 => chars(any::<char>().boxed(), 0..24),
        2 => chars(prop::char::range('-', 'z').boxed(), 0..32),
        1 => chars(prop::char::range('a', 'z').boxed(), 250..256),
        1 => chars(prop::sample::select(vec!['é', '€', '😀']).boxed(), 60..80),
    ]
    .prop_map(move |mut s| {
        while s.len() > max {
            s.pop();
        }
        s
    })
}

fn short_str() -> impl Strategy<Value = ShortStr> {
    utf8(255).prop_map(|s| ShortStr::try_from(s).unwrap())
}

fn bytes_value(max: usize) -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..max.min(32)),
        1 => prop::collection::vec(any::<u8>(), 0..max),
    ]
    .prop_map(Bytes::from)
}

/// Any field value, nested up to `depth` levels of tables and arrays. With `nan`
/// false, floats are never NaN (for tests that compare with `==`).
fn field_value(depth: u32, nan: bool) -> impl Strategy<Value = FieldValue> {
    let f32s = if nan {
        any::<u32>().prop_map(f32::from_bits).boxed()
    } else {
        any::<f32>().prop_filter("NaN", |f| !f.is_nan()).boxed()
    };
    let f64s = if nan {
        any::<u64>().prop_map(f64::from_bits).boxed()
    } else {
        any::<f64>().prop_filter("NaN", |f| !f.is_nan()).boxed()
    };
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        f32s.prop_map(FieldValue::F32),
        f64s.prop_map(FieldValue::F64),
        (any::<u8>(), any::<i32>()).prop_map(|(scale, value)| FieldValue::Decimal(Decimal { scale, value })),
        bytes_value(300).prop_map(FieldValue::LongStr),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
        bytes_value(64).prop_map(FieldValue::Bytes),
    ];
    leaf.prop_recursive(depth, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| FieldValue::Array(FieldArray(v))),
            prop::collection::vec((short_str(), inner), 0..6)
                .prop_map(|entries| FieldValue::Table(entries.into_iter().collect())),
        ]
    })
}

fn field_table(nan: bool) -> impl Strategy<Value = FieldTable> {
    prop::collection::vec((short_str(), field_value(4, nan)), 0..8).prop_map(|entries| entries.into_iter().collect())
}

/// Random wire bytes for one value of primitive type `ty` (zero / empty when reserved).
fn field_bytes(ty: Type, reserved: bool) -> BoxedStrategy<Vec<u8>> {
    if reserved {
        return Just(match ty {
            Type::Bit => unreachable!("bits are packed by the caller"),
            Type::Octet => vec![0],
            Type::Short => vec![0; 2],
            Type::Long => vec![0; 4],
            Type::LongLong | Type::Timestamp => vec![0; 8],
            Type::ShortStr => vec![0],
            Type::LongStr | Type::Table => vec![0; 4],
        })
        .boxed();
    }
    match ty {
        Type::Bit => unreachable!("bits are packed by the caller"),
        Type::Octet => any::<u8>().prop_map(|v| vec![v]).boxed(),
        Type::Short => any::<u16>().prop_map(|v| v.to_be_bytes().to_vec()).boxed(),
        Type::Long => any::<u32>().prop_map(|v| v.to_be_bytes().to_vec()).boxed(),
        Type::LongLong | Type::Timestamp => any::<u64>().prop_map(|v| v.to_be_bytes().to_vec()).boxed(),
        Type::ShortStr => utf8(255)
            .prop_map(|s| {
                let mut out = Vec::new();
                put_shortstr(&mut out, s.as_bytes());
                out
            })
            .boxed(),
        Type::LongStr => bytes_value(600)
            .prop_map(|b| {
                let mut out = Vec::new();
                put_longstr(&mut out, &b);
                out
            })
            .boxed(),
        Type::Table => field_table(true)
            .prop_map(|t| {
                let mut out = Vec::new();
                put_table(&mut out, &t);
                out
            })
            .boxed(),
    }
}

/// Random valid argument bytes for `fields`: bits packed LSB first, consecutive bits
/// sharing an octet (a ninth bit starts a new octet), reserved fields zero or empty.
fn arguments(fields: &[Field]) -> BoxedStrategy<Vec<u8>> {
    let mut parts: Vec<BoxedStrategy<Vec<u8>>> = Vec::new();
    let mut i = 0;
    while i < fields.len() {
        if fields[i].ty != Type::Bit {
            parts.push(field_bytes(fields[i].ty, fields[i].reserved));
            i += 1;
            continue;
        }
        // A run of bits: one octet per 8; reserved bits stay clear.
        let mut masks = Vec::new();
        let mut bit = 0;
        while i < fields.len() && fields[i].ty == Type::Bit {
            if bit == 0 {
                masks.push(0u8);
            }
            if !fields[i].reserved {
                *masks.last_mut().unwrap() |= 1 << bit;
            }
            bit = (bit + 1) % 8;
            i += 1;
        }
        for mask in masks {
            parts.push(any::<u8>().prop_map(move |b| vec![b & mask]).boxed());
        }
    }
    parts.prop_map(|parts| parts.concat()).boxed()
}

fn method_payload(class: u16, method: u16, fields: &[Field]) -> BoxedStrategy<Vec<u8>> {
    let ids = [class.to_be_bytes(), method.to_be_bytes()].concat();
    arguments(fields)
        .prop_map(move |args| [ids.clone(), args].concat())
        .boxed()
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Decodes a payload and re-encodes it; the bytes must come back identical.
fn roundtrip_method(payload: &[u8]) -> Result<Method, TestCaseError> {
    let src = Bytes::copy_from_slice(payload);
    let method = Method::decode(&src, &src[..]).map_err(|e| TestCaseError::fail(format!("decode: {e} ({e:?})")))?;
    let mut out = BytesMut::new();
    method.encode(&mut out);
    prop_assert_eq!(&out[..], payload, "re-encoding {:?}", method);
    // And through a whole method frame.
    let mut frame = BytesMut::new();
    warren::wire::encode_method(7, &method, &mut frame);
    let mut expected = vec![1, 0, 7];
    expected.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    expected.extend_from_slice(payload);
    expected.push(0xCE);
    prop_assert_eq!(&frame[..], &expected[..], "the frame of {:?}", method);
    let parsed = Frame::parse(&mut frame, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let Some(Frame::Method {
        channel: 7,
        method: again,
    }) = parsed
    else {
        return Err(TestCaseError::fail(format!("{parsed:?}")));
    };
    let mut out2 = BytesMut::new();
    again.encode(&mut out2);
    prop_assert_eq!(&out2[..], payload);
    // Read in place, it is the same method.
    let borrowed = MethodRef::decode(payload).map_err(|e| TestCaseError::fail(format!("decode in place: {e}")))?;
    prop_assert_eq!(borrowed.id(), method.id());
    prop_assert_eq!(borrowed.name(), method.name());
    prop_assert_eq!(&borrowed.into_owned(), &method);
    Ok(method)
}

// ---------------------------------------------------------------------------------
// Methods.

#[test]
fn the_spec_has_the_methods_we_expect() {
    let count: usize = SPEC.classes.iter().map(|c| c.methods.len()).sum();
    assert_eq!(count, 64, "methods in spec/amqp0-9-1.xml");
    assert_eq!(SPEC.classes.len(), 7);
}

#[test]
fn every_spec_method_roundtrips() {
    let mut decoded = BTreeSet::new();
    let mut total = 0;
    for class in &SPEC.classes {
        for m in &class.methods {
            total += 1;
            let name = format!("{}.{}", class.name, m.name);
            let id = MethodId::new(class.index, m.index);
            let strategy = method_payload(class.index, m.index, &m.fields);
            let cases = if m
                .fields
                .iter()
                .any(|f| matches!(f.ty, Type::Table | Type::LongStr | Type::ShortStr))
            {
                64
            } else {
                16
            };
            runner(cases)
                .run(&strategy, |payload| {
                    let method = roundtrip_method(&payload)?;
                    prop_assert_eq!(method.id(), id);
                    prop_assert_eq!(method.name(), name.as_str());
                    let info = method.info();
                    prop_assert_eq!(info.id, id);
                    prop_assert_eq!(info.name, name.as_str());
                    prop_assert_eq!(info.content, m.content);
                    prop_assert_eq!(info.synchronous, m.synchronous);
                    prop_assert_eq!(info.sent_by_server, m.sent_by_server);
                    prop_assert_eq!(info.sent_by_client, m.sent_by_client);
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            decoded.insert(id);
        }
    }
    assert_eq!(total, 64);
    assert_eq!(decoded.len(), total, "every spec method decodes, each to its own id");
}

/// The smallest payload of each method (all zero, empty strings and tables) decodes,
/// and `visit_fields` sees one field per non-reserved spec field, in spec order.
#[test]
fn every_spec_method_decodes_its_zero_payload() {
    let mut count = 0;
    for class in &SPEC.classes {
        for m in &class.methods {
            let payload = spec_payload::payload(class, m, |ty| match ty {
                Type::Octet | Type::ShortStr => vec![0],
                Type::Short => vec![0; 2],
                Type::Long | Type::LongStr | Type::Table => vec![0; 4],
                Type::LongLong | Type::Timestamp => vec![0; 8],
                Type::Bit => unreachable!(),
            });
            let method = roundtrip_method(&payload).unwrap_or_else(|e| panic!("{}.{}: {e}", class.name, m.name));
            let mut visited = Vec::new();
            method.visit_fields(&mut |name: &str, _value: warren::wire::FieldRef<'_>| visited.push(name.to_owned()));
            let expected: Vec<String> = m
                .fields
                .iter()
                .filter(|f| !f.reserved)
                .map(|f| f.name.clone())
                .collect();
            assert_eq!(visited, expected, "{}.{} fields", class.name, m.name);
            // The method table names the spec's responses.
            let responses: Vec<MethodId> = m
                .responses
                .iter()
                .map(|r| MethodId::new(class.index, class.method(&r.name).expect("response in the class").index))
                .collect();
            assert_eq!(
                method.info().responses,
                &responses[..],
                "{}.{} responses",
                class.name,
                m.name
            );
            count += 1;
        }
    }
    assert_eq!(count, 64);
}

// ---------------------------------------------------------------------------------
// Content headers.

fn basic_properties() -> impl Strategy<Value = BasicProperties> {
    let s = || prop::option::of(short_str());
    (
        (
            s(),
            s(),
            prop::option::of(field_table(false)),
            prop::option::of(any::<u8>()),
            prop::option::of(any::<u8>()),
        ),
        (s(), s(), s(), s(), prop::option::of(any::<u64>())),
        (s(), s(), s(), s()),
    )
        .prop_map(
            |(
                (content_type, content_encoding, headers, delivery_mode, priority),
                (correlation_id, reply_to, expiration, message_id, timestamp),
                (kind, user_id, app_id, cluster_id),
            )| BasicProperties {
                content_type,
                content_encoding,
                headers,
                delivery_mode,
                priority,
                correlation_id,
                reply_to,
                expiration,
                message_id,
                timestamp,
                kind,
                user_id,
                app_id,
                cluster_id,
            },
        )
}

fn present(p: &BasicProperties) -> [bool; 14] {
    [
        p.content_type.is_some(),
        p.content_encoding.is_some(),
        p.headers.is_some(),
        p.delivery_mode.is_some(),
        p.priority.is_some(),
        p.correlation_id.is_some(),
        p.reply_to.is_some(),
        p.expiration.is_some(),
        p.message_id.is_some(),
        p.timestamp.is_some(),
        p.kind.is_some(),
        p.user_id.is_some(),
        p.app_id.is_some(),
        p.cluster_id.is_some(),
    ]
}

#[test]
fn the_spec_lists_fourteen_basic_properties() {
    let basic = SPEC.class("basic").unwrap();
    let names: Vec<&str> = basic.properties.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "content-type",
            "content-encoding",
            "headers",
            "delivery-mode",
            "priority",
            "correlation-id",
            "reply-to",
            "expiration",
            "message-id",
            "timestamp",
            "type",
            "user-id",
            "app-id",
            "cluster-id"
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any subset of the 14 properties: flags() has bit 15 - i for property i, and a
    /// content header frame encodes, parses back equal, and re-encodes identically.
    #[test]
    fn content_header_roundtrip(properties in basic_properties(), channel in any::<u16>(), body_size in any::<u64>()) {
        let flags = properties.flags();
        for (i, is_set) in present(&properties).into_iter().enumerate() {
            prop_assert_eq!(flags & (1 << (15 - i)) != 0, is_set, "flag of property {}", i);
        }
        prop_assert_eq!(flags & 0b11, 0);
        let header = ContentHeader { class_id: 60, body_size, properties: properties.into() };
        let mut buf = BytesMut::new();
        encode_header(channel, &header, &mut buf);
        let bytes = buf.clone().freeze();
        prop_assert_eq!(&bytes[19..21], &flags.to_be_bytes()[..]);
        prop_assert_eq!(&bytes[7..9], &[0x00, 0x3C]);
        let (in_place, len) = FrameRef::parse(&bytes, 0).unwrap().unwrap();
        prop_assert_eq!(len, bytes.len());
        prop_assert_eq!(in_place.channel(), channel);
        let parsed = Frame::parse(&mut buf, 0).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&in_place.into_owned(), &parsed);
        prop_assert_eq!(&parsed, &Frame::Header { channel, header });
        let mut again = BytesMut::new();
        parsed.encode(&mut again);
        prop_assert_eq!(&again[..], &bytes[..]);
    }

    /// Property bytes built from the spec's property list: flags then the flagged
    /// values in order. Decoding then encoding gives the same bytes.
    #[test]
    fn content_header_from_spec_layout(
        mask in any::<u16>(),
        values in proptest::collection::vec(any::<u64>(), 14),
        strings in proptest::collection::vec(utf8(255), 14),
        table in field_table(true),
    ) {
        let props = &SPEC.class("basic").unwrap().properties;
        let mut flags = 0u16;
        let mut body = Vec::new();
        for (i, p) in props.iter().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            flags |= 1 << (15 - i);
            match p.ty {
                Type::ShortStr => put_shortstr(&mut body, strings[i].as_bytes()),
                Type::Octet => body.push(values[i] as u8),
                Type::Timestamp | Type::LongLong => body.extend_from_slice(&values[i].to_be_bytes()),
                Type::Table => put_table(&mut body, &table),
                other => panic!("property type {other}"),
            }
        }
        let payload = [&[0x00, 0x3C, 0x00, 0x00][..], &values[0].to_be_bytes(), &flags.to_be_bytes(), &body].concat();
        let frame_bytes = [&[0x02, 0x00, 0x01][..], &(payload.len() as u32).to_be_bytes(), &payload, &[0xCE]].concat();
        let mut buf = BytesMut::from(&frame_bytes[..]);
        let parsed = Frame::parse(&mut buf, 0).unwrap().unwrap();
        let Frame::Header { header, .. } = &parsed else { panic!("{parsed:?}") };
        prop_assert_eq!(header.properties.flags(), flags);
        prop_assert_eq!(header.body_size, values[0]);
        let mut again = BytesMut::new();
        parsed.encode(&mut again);
        prop_assert_eq!(&again[..], &frame_bytes[..]);
    }
}

// ---------------------------------------------------------------------------------
// Field tables.

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// encode_table then parse_table gives the table back (NaN included, compared bitwise).
    #[test]
    fn field_table_roundtrip(table in field_table(true)) {
        let mut buf = BytesMut::new();
        encode_table(&table, &mut buf);
        // warren's encoder and this file's agree on the bytes.
        let mut mine = Vec::new();
        put_table(&mut mine, &table);
        prop_assert_eq!(&buf[..], &mine[..]);
        let parsed = parse_table(&buf.clone().freeze()).unwrap();
        prop_assert!(same_table(&parsed, &table), "{:?} != {:?}", parsed, table);
    }

    /// Without NaN, plain `==` holds.
    #[test]
    fn field_table_roundtrip_eq(table in field_table(false)) {
        let mut buf = BytesMut::new();
        encode_table(&table, &mut buf);
        prop_assert_eq!(parse_table(&buf.freeze()).unwrap(), table);
    }

    /// Truncating an encoded table anywhere is an error (never a panic, never a table).
    #[test]
    fn truncated_tables_are_refused(table in field_table(true), cut in any::<prop::sample::Index>()) {
        let mut buf = BytesMut::new();
        encode_table(&table, &mut buf);
        let at = cut.index(buf.len());
        let short = buf.freeze().slice(..at);
        prop_assert!(parse_table(&short).is_err());
    }
}

#[test]
fn nesting_to_max_nesting_roundtrips() {
    let mut table = FieldTable::new();
    for level in 1..MAX_NESTING {
        let mut outer = FieldTable::new();
        if level % 2 == 0 {
            outer.insert(ShortStr::from_static("t"), table);
        } else {
            outer.insert(ShortStr::from_static("a"), FieldArray(vec![FieldValue::Table(table)]));
        }
        table = outer;
    }
    let mut buf = BytesMut::new();
    encode_table(&table, &mut buf);
    // Levels of tables and arrays count alike: 1 + (MAX_NESTING - 1) tables, plus arrays.
    let parsed = parse_table(&buf.freeze());
    // Arrays add levels too, so this nests deeper than MAX_NESTING and is refused.
    assert_eq!(parsed, Err(warren::wire::WireError::NestingTooDeep));

    let mut table = FieldTable::new();
    for _ in 1..MAX_NESTING {
        let mut outer = FieldTable::new();
        outer.insert(ShortStr::from_static("t"), table);
        table = outer;
    }
    let mut buf = BytesMut::new();
    encode_table(&table, &mut buf);
    assert_eq!(parse_table(&buf.freeze()), Ok(table));
}
