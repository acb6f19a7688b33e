//! Interoperability with pika (python3 + pika, installed by scripts/test-deps.sh):
//! pika publishes with every property and header type it can encode (it has no float
//! encoder, and encodes negative 64-bit integers with a tag RabbitMQ lacks) for warren to
//! consume, and pika consumes what warren published with every type, each side
//! checking every value.

mod common;

use bytes::Bytes;
use common::python::python;
use common::*;
use warren::client::*;
use warren::wire::{BasicProperties, Decimal, FieldArray, FieldTable, FieldValue, ShortStr};

fn key(k: &str) -> ShortStr {
    ShortStr::try_from(k).unwrap()
}

const PIKA_PUBLISH: &str = r#"
import sys, datetime, decimal, pika
url, queue = sys.argv[1], sys.argv[2]
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.confirm_delivery()
headers = {
    "bool": True,
    "int32": -123456,
    "int64": 2**40 + 7,
    "decimal": decimal.Decimal("123.45"),
    "neg_decimal": decimal.Decimal("-0.35935"),
    "str": "héllo",
    "bytes": b"\x00\x01\xfe\xff",
    "array": [1, "two", [False], {"k": "v"}],
    "table": {"inner": "deep", "n": 42},
    "datetime": datetime.datetime(2023, 11, 14, 22, 13, 20),
    "void": None,
}
props = pika.BasicProperties(
    content_type="application/octet-stream", content_encoding="identity", headers=headers,
    delivery_mode=2, priority=5, correlation_id="corr-9", reply_to="reply-q", expiration="60000",
    message_id="pika-1", timestamp=1700000000, type="interop", user_id="guest", app_id="pika-test",
)
ch.basic_publish(exchange="", routing_key=queue, body=bytes(range(256)) * 3, properties=props, mandatory=True)
conn.close()
print("published")
"#;

#[tokio::test]
async fn warren_consumes_what_pika_published() {
    let (conn, ch) = channel().await;
    let q = unique("from-pika");
    ch.queue_declare(&q, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    let url = amqp_url();
    let q2 = q.clone();
    let out = tokio::task::spawn_blocking(move || python(PIKA_PUBLISH, &[&url, &q2]))
        .await
        .unwrap();
    assert_eq!(out.trim(), "published");

    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let d = within(10, "pika's message", consumer.next()).await.unwrap().unwrap();
    let body: Vec<u8> = (0..=255u8).cycle().take(256 * 3).collect();
    assert_eq!(&d.body[..], &body[..]);
    let p = &d.properties;
    assert_eq!(p.content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(p.content_encoding.as_deref(), Some("identity"));
    assert_eq!(p.delivery_mode, Some(2));
    assert_eq!(p.priority, Some(5));
    assert_eq!(p.correlation_id.as_deref(), Some("corr-9"));
    assert_eq!(p.reply_to.as_deref(), Some("reply-q"));
    assert_eq!(p.expiration.as_deref(), Some("60000"));
    assert_eq!(p.message_id.as_deref(), Some("pika-1"));
    assert_eq!(p.timestamp, Some(1_700_000_000));
    assert_eq!(p.kind.as_deref(), Some("interop"));
    assert_eq!(p.user_id.as_deref(), Some("guest"));
    assert_eq!(p.app_id.as_deref(), Some("pika-test"));
    let h = p.headers.as_ref().expect("headers");
    let mut inner = FieldTable::new();
    inner.insert(key("k"), FieldValue::from("v"));
    let mut table = FieldTable::new();
    table.insert(key("inner"), FieldValue::from("deep"));
    table.insert(key("n"), FieldValue::I32(42));
    let expected: Vec<(&str, FieldValue)> = vec![
        ("bool", FieldValue::Bool(true)),
        ("int32", FieldValue::I32(-123456)),
        ("int64", FieldValue::I64((1 << 40) + 7)),
        ("decimal", FieldValue::Decimal(Decimal { scale: 2, value: 12345 })),
        ("neg_decimal", FieldValue::Decimal(Decimal::new(5, -35935))),
        ("str", FieldValue::LongStr(Bytes::from("héllo"))),
        ("bytes", FieldValue::Bytes(Bytes::from_static(&[0, 1, 0xfe, 0xff]))),
        (
            "array",
            FieldValue::Array(FieldArray(vec![
                FieldValue::I32(1),
                FieldValue::from("two"),
                FieldValue::Array(FieldArray(vec![FieldValue::Bool(false)])),
                FieldValue::Table(inner),
            ])),
        ),
        ("table", FieldValue::Table(table)),
        ("datetime", FieldValue::Timestamp(1_700_000_000)),
        ("void", FieldValue::Void),
    ];
    for (k, v) in &expected {
        assert_eq!(h.get(k), Some(v), "header {k}");
    }
    assert_eq!(h.len(), expected.len());
    d.ack().await.unwrap();
    ch.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap();
    conn.close().await.unwrap();
}

const PIKA_CHECK: &str = r#"
import sys, datetime, decimal, pika
url, queue = sys.argv[1], sys.argv[2]
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
method, props, body = ch.basic_get(queue, auto_ack=True)
assert method is not None, "no message"
problems = []
def check(name, got, want):
    if got != want or (type(got) is not type(want) and not (isinstance(got, int) and isinstance(want, int))):
        problems.append(f"{name}: got {got!r} ({type(got).__name__}), want {want!r} ({type(want).__name__})")
check("body", body, bytes(range(256)) * 2)
check("content_type", props.content_type, "application/json")
check("content_encoding", props.content_encoding, "gzip")
check("delivery_mode", props.delivery_mode, 2)
check("priority", props.priority, 9)
check("correlation_id", props.correlation_id, "c-42")
check("reply_to", props.reply_to, "replies-here")
check("expiration", props.expiration, "120000")
check("message_id", props.message_id, "warren-1")
check("timestamp", props.timestamp, 1700000123)
check("type", props.type, "typed")
check("user_id", props.user_id, "guest")
check("app_id", props.app_id, "warren")
h = props.headers or {}
# pika 1.3 decodes some tags differently from RabbitMQ (and warren): `b` as unsigned and
# `B` as signed, `l` as unsigned, `f` and `d` truncated to integers. The expected values
# below are what pika makes of the exact bits RabbitMQ's types prescribe.
want = {
    "t": True, "b": 256 - 8, "B": 200 - 256, "s": -300, "u": 60000, "I": -2000000000, "i": 4000000000,
    "l": 2**64 - 9000000000000000000, "f": int(1234.5), "d": int(-2.25e100), "D": decimal.Decimal("123.45"),
    "Dn": decimal.Decimal("-0.35935"), "S": "héllo", "A": [1, "two", [False], {"k": "v"}], "T": datetime.datetime(2023, 11, 14, 22, 13, 20),
    "F": {"inner": "deep", "n": 2**64 - 1}, "V": None, "x": b"\x00\x01\xff",
}
for k, v in want.items():
    check("header " + k, h.get(k, "<missing>"), v)
if set(h) != set(want):
    problems.append(f"header keys {sorted(h)} != {sorted(want)}")
conn.close()
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("all equal")
"#;

#[tokio::test]
async fn pika_consumes_what_warren_published() {
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let q = unique("to-pika");
    ch.queue_declare(&q, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    let mut nested = FieldTable::new();
    nested.insert(key("inner"), FieldValue::from("deep"));
    nested.insert(key("n"), FieldValue::I64(-1));
    let mut kv = FieldTable::new();
    kv.insert(key("k"), FieldValue::from("v"));
    let mut h = FieldTable::new();
    h.insert(key("t"), FieldValue::Bool(true));
    h.insert(key("b"), FieldValue::I8(-8));
    h.insert(key("B"), FieldValue::U8(200));
    h.insert(key("s"), FieldValue::I16(-300));
    h.insert(key("u"), FieldValue::U16(60000));
    h.insert(key("I"), FieldValue::I32(-2_000_000_000));
    h.insert(key("i"), FieldValue::U32(4_000_000_000));
    h.insert(key("l"), FieldValue::I64(-9_000_000_000_000_000_000));
    h.insert(key("f"), FieldValue::F32(1234.5));
    h.insert(key("d"), FieldValue::F64(-2.25e100));
    h.insert(key("D"), FieldValue::Decimal(Decimal { scale: 2, value: 12345 }));
    h.insert(key("Dn"), FieldValue::Decimal(Decimal::new(5, -35935)));
    h.insert(key("S"), FieldValue::from("héllo"));
    h.insert(
        key("A"),
        FieldValue::Array(FieldArray(vec![
            FieldValue::I8(1),
            FieldValue::from("two"),
            FieldValue::Array(FieldArray(vec![FieldValue::Bool(false)])),
            FieldValue::Table(kv),
        ])),
    );
    h.insert(key("T"), FieldValue::Timestamp(1_700_000_000));
    h.insert(key("F"), FieldValue::Table(nested));
    h.insert(key("V"), FieldValue::Void);
    h.insert(key("x"), FieldValue::Bytes(Bytes::from_static(&[0, 1, 0xff])));
    let props = BasicProperties {
        content_type: Some(key("application/json")),
        content_encoding: Some(key("gzip")),
        headers: Some(h),
        delivery_mode: Some(2),
        priority: Some(9),
        correlation_id: Some(key("c-42")),
        reply_to: Some(key("replies-here")),
        expiration: Some(key("120000")),
        message_id: Some(key("warren-1")),
        timestamp: Some(1_700_000_123),
        kind: Some(key("typed")),
        user_id: Some(key("guest")),
        app_id: Some(key("warren")),
        ..Default::default()
    };
    let body: Vec<u8> = (0..=255u8).cycle().take(512).collect();
    let c = ch
        .basic_publish("", &q, PublishOptions { mandatory: true }, props, body)
        .await
        .unwrap();
    assert_eq!(c.await.unwrap(), Confirmed::Ack);
    let url = amqp_url();
    let q2 = q.clone();
    let out = tokio::task::spawn_blocking(move || python(PIKA_CHECK, &[&url, &q2]))
        .await
        .unwrap();
    assert_eq!(out.trim(), "all equal");
    ch.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap();
    conn.close().await.unwrap();
}
