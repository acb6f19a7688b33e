//! `warren decode` run as a process: hand-built streams, malformed and truncated input,
//! and a real RabbitMQ session captured with pika (see tests/data/README.md).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_warren");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// Runs `warren decode ARGS` with `stdin` on standard input.
fn decode(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run warren");
    // The tool does not read standard input when given a file: ignore a closed pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// Every stdout line parsed as JSON (failing the test on invalid JSON).
fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| json::parse(l).unwrap_or_else(|e| panic!("invalid JSON line {l:?}: {e}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> Vec<Value> {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
    assert!(out.stderr.is_empty(), "stderr: {}", stderr(out));
    lines(out)
}

// ---------------------------------------------------------------- hand-built streams

mod wire {
    pub fn frame(out: &mut Vec<u8>, frame_type: u8, channel: u16, payload: &[u8]) {
        out.push(frame_type);
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out.push(0xCE);
    }
    pub fn short(p: &mut Vec<u8>, v: u16) {
        p.extend_from_slice(&v.to_be_bytes());
    }
    pub fn shortstr(p: &mut Vec<u8>, s: &[u8]) {
        p.push(s.len() as u8);
        p.extend_from_slice(s);
    }
    pub fn longstr(p: &mut Vec<u8>, s: &[u8]) {
        p.extend_from_slice(&(s.len() as u32).to_be_bytes());
        p.extend_from_slice(s);
    }
    /// A method frame payload: class, method, then `args`.
    pub fn method(out: &mut Vec<u8>, channel: u16, class: u16, method: u16, args: &[u8]) {
        let mut p = Vec::new();
        short(&mut p, class);
        short(&mut p, method);
        p.extend_from_slice(args);
        frame(out, 1, channel, &p);
    }
}

/// basic.deliver with a consumer tag that needs JSON escaping.
fn deliver(out: &mut Vec<u8>, tag: u64) {
    let mut a = Vec::new();
    wire::shortstr(&mut a, "ctag \"q\" \\ \n\t é ✓".as_bytes());
    a.extend_from_slice(&tag.to_be_bytes());
    a.push(1); // redelivered
    wire::shortstr(&mut a, b"");
    wire::shortstr(&mut a, b"rk");
    wire::method(out, 1, 60, 60, &a);
}

/// A headers table with every field type RabbitMQ knows.
fn all_types_table() -> Vec<u8> {
    let mut t = Vec::new();
    let mut entry = |key: &str, tag: u8, value: &[u8]| {
        wire::shortstr(&mut t, key.as_bytes());
        t.push(tag);
        t.extend_from_slice(value);
    };
    entry("bool", b't', &[1]);
    entry("i8", b'b', &[0xff]);
    entry("u8", b'B', &[200]);
    entry("i16", b's', &(-300i16).to_be_bytes());
    entry("u16", b'u', &60000u16.to_be_bytes());
    entry("i32", b'I', &(-70000i32).to_be_bytes());
    entry("u32", b'i', &4000000000u32.to_be_bytes());
    entry("i64", b'l', &i64::MIN.to_be_bytes());
    entry("f32", b'f', &0.1f32.to_be_bytes());
    entry("f64", b'd', &(-2.5e-8f64).to_be_bytes());
    entry("nan", b'd', &f64::NAN.to_be_bytes());
    entry("inf", b'f', &f32::INFINITY.to_be_bytes());
    entry("dec", b'D', &[3, 0, 0, 0, 5]);
    // -0.35935 as the Java, Go and .NET clients, pika and pamqp write it: the value is signed.
    entry("negdec", b'D', &[5, 0xff, 0xff, 0x73, 0xa1]);
    let mut s = Vec::new();
    wire::longstr(&mut s, "line\nquote\"".as_bytes());
    entry("str", b'S', &s);
    let mut s = Vec::new();
    wire::longstr(&mut s, &[0xff, 0xfe]);
    entry("notutf8", b'S', &s);
    entry("bytes", b'x', &s);
    entry("ts", b'T', &1_700_000_000u64.to_be_bytes());
    entry("void", b'V', &[]);
    let mut arr = Vec::new();
    arr.push(b'I');
    arr.extend_from_slice(&7i32.to_be_bytes());
    arr.push(b'V');
    arr.push(b'A');
    arr.extend_from_slice(&0u32.to_be_bytes());
    let mut a = Vec::new();
    wire::longstr(&mut a, &arr);
    entry("arr", b'A', &a);
    let mut inner = Vec::new();
    wire::shortstr(&mut inner, b"k");
    inner.push(b'S');
    wire::longstr(&mut inner, b"v");
    let mut f = Vec::new();
    wire::longstr(&mut f, &inner);
    entry("nested", b'F', &f);
    // Repeated key: kept, in wire order.
    entry("bool", b't', &[0]);
    let mut table = Vec::new();
    wire::longstr(&mut table, &t);
    table
}

fn header(out: &mut Vec<u8>, body_size: u64) {
    let mut p = Vec::new();
    wire::short(&mut p, 60);
    wire::short(&mut p, 0);
    p.extend_from_slice(&body_size.to_be_bytes());
    // content-type (15), headers (13), delivery-mode (12), timestamp (6)
    wire::short(&mut p, 0x8000 | 0x2000 | 0x1000 | 0x0040);
    wire::shortstr(&mut p, b"text/plain");
    p.extend_from_slice(&all_types_table());
    p.push(2);
    p.extend_from_slice(&1_700_000_123u64.to_be_bytes());
    wire::frame(out, 2, 1, &p);
}

fn hand_built(with_protocol_header: bool) -> Vec<u8> {
    let mut s = Vec::new();
    if with_protocol_header {
        s.extend_from_slice(b"AMQP\x00\x00\x09\x01");
    }
    deliver(&mut s, u64::MAX);
    header(&mut s, 5);
    wire::frame(&mut s, 3, 1, b"he");
    wire::frame(&mut s, 3, 1, &[0xff, 0x00, b'"']);
    wire::frame(&mut s, 8, 0, b"");
    s
}

#[test]
fn hand_built_stream() {
    let input = hand_built(true);
    let out = ok(&decode(&["--body"], &input));
    assert_eq!(out.len(), 6);

    assert_eq!(
        out[0].to_string(),
        r#"{"offset":0,"type":"protocol-header","version":"0-9-1"}"#
    );

    let d = &out[1];
    assert_eq!(d["offset"].num(), 8);
    assert_eq!(d["type"].str(), "method");
    assert_eq!(d["channel"].num(), 1);
    assert_eq!(d["class"].str(), "basic");
    assert_eq!(d["method"].str(), "deliver");
    assert_eq!(d["name"].str(), "basic.deliver");
    assert_eq!((d["class_id"].num(), d["method_id"].num()), (60, 60));
    let f = &d["fields"];
    assert_eq!(
        f.keys(),
        ["consumer-tag", "delivery-tag", "redelivered", "exchange", "routing-key"]
    );
    assert_eq!(f["consumer-tag"].str(), "ctag \"q\" \\ \n\t é ✓");
    assert_eq!(
        f["delivery-tag"].to_string(),
        u64::MAX.to_string(),
        "u64 printed in full"
    );
    assert_eq!(f["redelivered"], Value::Bool(true));
    assert_eq!(f["exchange"].str(), "");
    assert_eq!(f["routing-key"].str(), "rk");

    let h = &out[2];
    assert_eq!(h["type"].str(), "header");
    assert_eq!(
        (h["channel"].num(), h["class_id"].num(), h["body_size"].num()),
        (1, 60, 5)
    );
    let p = &h["properties"];
    assert_eq!(p.keys(), ["content-type", "headers", "delivery-mode", "timestamp"]);
    assert_eq!(p["content-type"].str(), "text/plain");
    assert_eq!(p["delivery-mode"].num(), 2);
    assert_eq!(p["timestamp"].num(), 1_700_000_123);
    let t = &p["headers"];
    assert_eq!(
        t.keys(),
        [
            "bool", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "f32", "f64", "nan", "inf", "dec", "negdec", "str",
            "notutf8", "bytes", "ts", "void", "arr", "nested", "bool"
        ]
    );
    let Value::Obj(entries) = t else { unreachable!() };
    let expected = [
        r#"true"#,
        r#"-1"#,
        r#"200"#,
        r#"-300"#,
        r#"60000"#,
        r#"-70000"#,
        r#"4000000000"#,
        r#"-9223372036854775808"#,
        r#"0.1"#,
        r#"-2.5e-8"#,
        r#""NaN""#,
        r#""Infinity""#,
        r#"{"decimal":"0.005"}"#,
        r#"{"decimal":"-0.35935"}"#,
        r#""line\nquote\"""#,
        r#"{"bytes":"fffe"}"#,
        r#"{"bytes":"fffe"}"#,
        r#"{"timestamp":1700000000}"#,
        r#"null"#,
        r#"[7,null,[]]"#,
        r#"{"k":"v"}"#,
        r#"false"#,
    ];
    for ((key, value), want) in entries.iter().zip(expected) {
        assert_eq!(value.to_string(), want, "headers.{key}");
    }

    assert_eq!(
        out[3].to_string(),
        format!(
            r#"{{"offset":{},"type":"body","channel":1,"size":2,"body":"he"}}"#,
            out[3]["offset"].num()
        )
    );
    assert_eq!(out[4]["body"].to_string(), r#"{"bytes":"ff0022"}"#);
    assert_eq!(
        out[5].to_string(),
        format!(r#"{{"offset":{},"type":"heartbeat","channel":0}}"#, input.len() - 8)
    );

    // Offsets are where each frame starts.
    let starts: Vec<i128> = out.iter().map(|v| v["offset"].num()).collect();
    let mut at = 8;
    for (i, start) in starts.iter().enumerate().skip(1) {
        assert_eq!(*start, at as i128, "frame {i}");
        let size = u32::from_be_bytes(input[at + 3..at + 7].try_into().unwrap()) as usize;
        at += size + 8;
    }
    assert_eq!(at, input.len());
}

#[test]
fn the_raw_output_is_exact() {
    // One exact line, to pin the format (key order, spacing, escaping).
    let mut s = Vec::new();
    deliver(&mut s, 7);
    let out = decode(&[], &s);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"offset\":0,\"type\":\"method\",\"channel\":1,\"class\":\"basic\",\"method\":\"deliver\",\
         \"name\":\"basic.deliver\",\"class_id\":60,\"method_id\":60,\"fields\":{\"consumer-tag\":\
         \"ctag \\\"q\\\" \\\\ \\n\\t é ✓\",\"delivery-tag\":7,\"redelivered\":true,\"exchange\":\"\",\
         \"routing-key\":\"rk\"}}\n"
    );
}

#[test]
fn without_protocol_header_and_without_body_option() {
    let out = ok(&decode(&[], &hand_built(false)));
    assert_eq!(out.len(), 5);
    assert_eq!(out[0]["offset"].num(), 0);
    assert_eq!(out[0]["name"].str(), "basic.deliver");
    assert!(out[2].get("body").is_none(), "bodies are left out without --body");
    assert_eq!(out[2]["size"].num(), 2);
}

#[test]
fn reads_a_file_argument() {
    let path = std::env::temp_dir().join(format!("warren-decode-test-{}.bin", std::process::id()));
    std::fs::write(&path, hand_built(true)).unwrap();
    let out = ok(&decode(&[path.to_str().unwrap()], b"ignored"));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.len(), 6);
    let missing = decode(&["/nonexistent/warren.bin"], b"");
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("/nonexistent/warren.bin"));
}

#[test]
fn empty_input_prints_nothing() {
    let out = ok(&decode(&[], b""));
    assert!(out.is_empty());
}

// ---------------------------------------------------------------- malformed input

#[test]
fn bad_frame_end_prints_frames_before_it_then_fails() {
    let mut s = b"AMQP\x00\x00\x09\x01".to_vec();
    deliver(&mut s, 1);
    let bad_frame = s.len();
    wire::frame(&mut s, 8, 0, b"");
    *s.last_mut().unwrap() = 0x00;
    wire::frame(&mut s, 8, 0, b"");
    let out = decode(&[], &s);
    assert_eq!(out.status.code(), Some(1));
    let printed = lines(&out);
    assert_eq!(printed.len(), 2, "the protocol header and the deliver before the fault");
    assert_eq!(printed[1]["name"].str(), "basic.deliver");
    assert_eq!(
        stderr(&out).trim_end(),
        format!(
            "error at byte offset {}: frame end octet was 0x00, expected 0xce (reply code 501 frame-error)",
            bad_frame + 7
        )
    );
}

#[test]
fn unknown_frame_type_and_unknown_method() {
    let mut s = Vec::new();
    wire::frame(&mut s, 8, 0, b"");
    wire::frame(&mut s, 9, 0, b"");
    let out = decode(&[], &s);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out).len(), 1);
    let err = stderr(&out);
    assert!(err.starts_with("error at byte offset 8: unknown frame type 9"), "{err}");
    assert!(err.contains("reply code 501"), "{err}");

    let mut s = Vec::new();
    wire::method(&mut s, 1, 60, 999, b"");
    let out = decode(&[], &s);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error at byte offset 0: unknown method 60.999"),
        "{err}"
    );
    assert!(err.contains("reply code 503"), "{err}");
}

#[test]
fn bad_payload_is_a_syntax_error_at_its_frame() {
    let mut s = Vec::new();
    wire::frame(&mut s, 8, 0, b"");
    // basic.deliver cut after the consumer tag.
    let mut a = Vec::new();
    wire::shortstr(&mut a, b"c");
    wire::method(&mut s, 1, 60, 60, &a);
    let out = decode(&[], &s);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error at byte offset 8: "), "{err}");
    assert!(err.contains("reply code 502"), "{err}");
}

#[test]
fn truncated_frame() {
    let mut s = b"AMQP\x00\x00\x09\x01".to_vec();
    deliver(&mut s, 1);
    let start = s.len();
    wire::frame(&mut s, 3, 1, &[7; 100]);
    s.truncate(start + 50);
    let out = decode(&[], &s);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out).len(), 2);
    assert_eq!(
        stderr(&out).trim_end(),
        format!("truncated frame at offset {start} (need 58 more bytes)")
    );

    // Cut inside the 7-byte frame header.
    let out = decode(&[], &[1, 0]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        "truncated frame at offset 0 (need at least 6 more bytes)"
    );

    // Cut inside the protocol header.
    let out = decode(&[], b"AMQP\x00");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        "truncated frame at offset 0 (need 3 more bytes)"
    );
}

#[test]
fn frame_max_is_enforced() {
    let mut s = Vec::new();
    wire::frame(&mut s, 3, 1, &[0; 100]);
    ok(&decode(&["--frame-max", "108"], &s));
    let out = decode(&["--frame-max", "107"], &s);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error at byte offset 3: frame of 108 bytes exceeds frame_max 107"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["--bogus"][..], &["--frame-max"], &["--frame-max", "x"], &["a", "b"]] {
        let out = decode(args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("usage: warren decode"));
    }
    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).arg("nope").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = decode(&["--help"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--frame-max"));
}

// ---------------------------------------------------------------- a real RabbitMQ session

fn capture(direction: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/rabbitmq-{direction}-stream.bin")).expect("captured stream")
}

/// Whether `frame` is the method `name`.
fn is(frame: &Value, name: &str) -> bool {
    frame.get("name").is_some_and(|n| *n == Value::Str(name.into()))
}

/// The names of the method frames, in order.
fn method_names(frames: &[Value]) -> Vec<&str> {
    frames
        .iter()
        .filter(|f| f["type"].str() == "method")
        .map(|f| f["name"].str())
        .collect()
}

/// The bodies and header tables pika published (see tests/data/capture.py).
const BODIES: [&str; 3] = [
    r#""hello from pika 1""#,
    r#""{\"n\":2,\"text\":\"café \\\"quoted\\\"\"}""#,
    r#"{"bytes":"ff00fe0180"}"#,
];

fn check_published_properties(i: usize, p: &Value) {
    let seq = i as i128 + 1;
    let text = i < 2;
    assert_eq!(
        p["content-type"].str(),
        if text { "text/plain" } else { "application/octet-stream" }
    );
    if text {
        assert_eq!(p["content-encoding"].str(), "utf-8");
    } else {
        assert!(p.get("content-encoding").is_none());
    }
    assert_eq!(p["delivery-mode"].num(), 2);
    assert_eq!(p["priority"].num(), seq);
    assert_eq!(p["correlation-id"].str(), format!("corr-{seq}"));
    assert_eq!(
        p.get("reply-to").map(Value::str),
        (i == 0).then_some("warren-capture-replies")
    );
    assert_eq!(p["expiration"].str(), "60000");
    assert_eq!(p["message-id"].str(), format!("msg-{seq}"));
    assert_eq!(p["timestamp"].num(), 1_700_000_000 + seq);
    assert_eq!(p["type"].str(), "capture.test");
    assert_eq!(p["user-id"].str(), "guest");
    assert_eq!(p["app-id"].str(), "warren-capture");
    let h = &p["headers"];
    assert_eq!(h["x-seq"].num(), seq);
    assert_eq!(h["x-source"].str(), "pika");
    assert_eq!(h["x-flag"], Value::Bool(seq % 2 == 1));
    assert_eq!(h["x-big"].num(), (1i128 << 40) + seq);
    assert_eq!(h["x-price"].to_string(), r#"{"decimal":"12.34"}"#);
    assert_eq!(h["x-when"].to_string(), r#"{"timestamp":1704164645}"#);
    assert_eq!(h["x-nested"].to_string(), format!(r#"{{"k":"v","n":-{seq}}}"#));
    assert_eq!(h["x-list"].to_string(), r#"[1,"two",null]"#);
    assert_eq!(h["x-raw"].to_string(), r#"{"bytes":"0001"}"#);
}

#[test]
fn real_rabbitmq_server_stream() {
    let input = capture("server");
    let frames = ok(&decode(&["--body"], &input));
    assert_ne!(
        frames[0]["type"].str(),
        "protocol-header",
        "the server sends no protocol header"
    );
    assert_eq!(
        method_names(&frames),
        [
            "connection.start",
            "connection.tune",
            "connection.open-ok",
            "channel.open-ok",
            "queue.declare-ok",
            "confirm.select-ok",
            "basic.ack",
            "basic.ack",
            "basic.ack",
            "basic.qos-ok",
            "basic.consume-ok",
            "basic.deliver",
            "basic.deliver",
            "basic.deliver",
            "basic.cancel-ok",
            "channel.close-ok",
            "connection.close-ok",
        ]
    );

    let start = &frames[0];
    assert_eq!(
        (
            start["channel"].num(),
            start["class_id"].num(),
            start["method_id"].num()
        ),
        (0, 10, 10)
    );
    let f = &start["fields"];
    assert_eq!((f["version-major"].num(), f["version-minor"].num()), (0, 9));
    let sp = &f["server-properties"];
    assert_eq!(sp["product"].str(), "RabbitMQ");
    assert_eq!(sp["platform"].str().split(' ').next(), Some("Erlang/OTP"));
    assert!(!sp["version"].str().is_empty());
    assert_eq!(sp["capabilities"]["publisher_confirms"], Value::Bool(true));
    assert_eq!(sp["capabilities"]["basic.nack"], Value::Bool(true));
    assert!(f["mechanisms"].str().split(' ').any(|m| m == "PLAIN"));
    assert_eq!(f["locales"].str(), "en_US");

    fn named<'a>(frames: &'a [Value], name: &'a str) -> impl Iterator<Item = &'a Value> {
        frames
            .iter()
            .filter(move |f| f["type"].str() == "method" && f["name"].str() == name)
    }
    let by_name = |name: &'static str| named(&frames, name);
    let tune = by_name("connection.tune").next().unwrap();
    assert!(tune["fields"]["frame-max"].num() >= 4096);
    let declare_ok = by_name("queue.declare-ok").next().unwrap();
    assert_eq!(declare_ok["fields"]["queue"].str(), "warren-decode-capture");
    assert_eq!(declare_ok["fields"]["message-count"].num(), 0);
    let acks: Vec<(i128, bool)> = by_name("basic.ack")
        .map(|a| {
            (
                a["fields"]["delivery-tag"].num(),
                a["fields"]["multiple"] == Value::Bool(true),
            )
        })
        .collect();
    assert_eq!(
        acks,
        [(1, false), (2, false), (3, false)],
        "one publisher confirm per publish"
    );
    assert_eq!(
        by_name("basic.consume-ok").next().unwrap()["fields"]["consumer-tag"].str(),
        "warren-capture-ctag"
    );

    // Each delivery is a method, a header and one body frame on channel 1.
    let at = frames.iter().position(|f| is(f, "basic.deliver")).unwrap();
    for i in 0..3 {
        let d = &frames[at + 3 * i];
        let (h, b) = (&frames[at + 3 * i + 1], &frames[at + 3 * i + 2]);
        assert_eq!(d["name"].str(), "basic.deliver");
        assert_eq!(d["channel"].num(), 1);
        let f = &d["fields"];
        assert_eq!(f["consumer-tag"].str(), "warren-capture-ctag");
        assert_eq!(f["delivery-tag"].num(), i as i128 + 1);
        assert_eq!(f["redelivered"], Value::Bool(false));
        assert_eq!(f["exchange"].str(), "");
        assert_eq!(f["routing-key"].str(), "warren-decode-capture");
        assert_eq!((h["type"].str(), h["class_id"].num()), ("header", 60));
        check_published_properties(i, &h["properties"]);
        assert_eq!(b["type"].str(), "body");
        assert_eq!(h["body_size"].num(), b["size"].num());
        assert_eq!(b["body"].to_string(), BODIES[i]);
    }
    let last = frames.last().unwrap();
    assert_eq!(last["name"].str(), "connection.close-ok");
    let at = last["offset"].num() as usize;
    let size = u32::from_be_bytes(input[at + 3..at + 7].try_into().unwrap()) as usize;
    assert_eq!(at + size + 8, input.len(), "the last frame ends the capture");
}

#[test]
fn real_rabbitmq_client_stream() {
    let input = capture("client");
    let frames = ok(&decode(&["--body"], &input));
    assert_eq!(
        frames[0].to_string(),
        r#"{"offset":0,"type":"protocol-header","version":"0-9-1"}"#
    );
    assert_eq!(
        method_names(&frames),
        [
            "connection.start-ok",
            "connection.tune-ok",
            "connection.open",
            "channel.open",
            "queue.declare",
            "confirm.select",
            "basic.publish",
            "basic.publish",
            "basic.publish",
            "basic.qos",
            "basic.consume",
            "basic.ack",
            "basic.ack",
            "basic.ack",
            "basic.cancel",
            "channel.close",
            "connection.close",
        ]
    );
    let start_ok = &frames[1]["fields"];
    assert_eq!(start_ok["mechanism"].str(), "PLAIN");
    assert_eq!(start_ok["response"].str(), "\u{0}guest\u{0}guest");
    assert_eq!(
        start_ok["client-properties"]["connection_name"].str(),
        "warren-decode-capture"
    );
    assert_eq!(
        start_ok["client-properties"]["product"].str(),
        "Pika Python Client Library"
    );
    assert_eq!(frames[3]["fields"]["virtual-host"].str(), "/");

    let declare = frames.iter().find(|f| is(f, "queue.declare")).unwrap();
    assert_eq!(declare["fields"]["queue"].str(), "warren-decode-capture");
    assert_eq!(declare["fields"]["exclusive"], Value::Bool(true));
    assert_eq!(declare["fields"]["auto-delete"], Value::Bool(true));

    let at = frames.iter().position(|f| is(f, "basic.publish")).unwrap();
    for i in 0..3 {
        let (p, h, b) = (&frames[at + 3 * i], &frames[at + 3 * i + 1], &frames[at + 3 * i + 2]);
        assert_eq!(p["name"].str(), "basic.publish");
        assert_eq!(p["fields"]["exchange"].str(), "");
        assert_eq!(p["fields"]["routing-key"].str(), "warren-decode-capture");
        assert_eq!(p["fields"]["mandatory"], Value::Bool(true));
        check_published_properties(i, &h["properties"]);
        assert_eq!(b["body"].to_string(), BODIES[i]);
    }
    let close = frames.last().unwrap();
    assert_eq!(close["name"].str(), "connection.close");
    assert_eq!(close["fields"]["reply-code"].num(), 200);
}

#[test]
fn real_stream_through_stdin_in_pieces_is_the_same_as_the_file() {
    let path = format!("{DATA}/rabbitmq-server-stream.bin");
    let from_file = Command::new(BIN).args(["decode", &path]).output().unwrap();
    let from_stdin = decode(&[], &capture("server"));
    assert_eq!(from_file.status.code(), Some(0));
    assert_eq!(from_file.stdout, from_stdin.stdout);
}

#[test]
fn every_cut_of_the_real_stream_fails_cleanly() {
    // Cutting the capture anywhere inside a frame: the whole frames before the cut are
    // printed, and the error names the frame's offset. Sampled to keep the test quick.
    let input = capture("server");
    let full = lines(&decode(&[], &input));
    let offsets: Vec<usize> = full.iter().map(|f| f["offset"].num() as usize).collect();
    for cut in (1..input.len()).step_by(97) {
        let out = decode(&[], &input[..cut]);
        let whole = offsets.iter().filter(|&&o| o < cut).count();
        if offsets.contains(&cut) {
            assert_eq!(out.status.code(), Some(0));
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "cut at {cut}");
        assert_eq!(lines(&out).len(), whole - 1, "cut at {cut}");
        let frame_start = offsets[whole - 1];
        assert!(
            stderr(&out).starts_with(&format!("truncated frame at offset {frame_start} (need ")),
            "{}",
            stderr(&out)
        );
    }
}

// ---------------------------------------------------------------- a small JSON reader

/// Just enough JSON to check the tool's output strictly: any syntax error fails a test.
mod json {
    use std::fmt;

    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        /// The number as written.
        Num(String),
        Str(String),
        Arr(Vec<Value>),
        /// Entries in order, repeated keys kept.
        Obj(Vec<(String, Value)>),
    }

    impl Value {
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Obj(e) => e.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
        pub fn str(&self) -> &str {
            match self {
                Value::Str(s) => s,
                v => panic!("not a string: {v}"),
            }
        }
        pub fn num(&self) -> i128 {
            match self {
                Value::Num(n) => n.parse().unwrap_or_else(|_| panic!("not an integer: {n}")),
                v => panic!("not a number: {v}"),
            }
        }
        pub fn keys(&self) -> Vec<&str> {
            match self {
                Value::Obj(e) => e.iter().map(|(k, _)| k.as_str()).collect(),
                v => panic!("not an object: {v}"),
            }
        }
    }

    impl std::ops::Index<&str> for Value {
        type Output = Value;
        fn index(&self, key: &str) -> &Value {
            self.get(key).unwrap_or_else(|| panic!("no key {key:?} in {self}"))
        }
    }

    /// Compact JSON again, with the same escaping rules as the tool.
    impl fmt::Display for Value {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Value::Null => f.write_str("null"),
                Value::Bool(b) => write!(f, "{b}"),
                Value::Num(n) => f.write_str(n),
                Value::Str(s) => write_str(f, s),
                Value::Arr(a) => {
                    f.write_str("[")?;
                    for (i, v) in a.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{v}")?;
                    }
                    f.write_str("]")
                }
                Value::Obj(e) => {
                    f.write_str("{")?;
                    for (i, (k, v)) in e.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write_str(f, k)?;
                        write!(f, ":{v}")?;
                    }
                    f.write_str("}")
                }
            }
        }
    }

    fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
        f.write_str("\"")?;
        for c in s.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\u{8}' => f.write_str("\\b")?,
                '\u{c}' => f.write_str("\\f")?,
                c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }

    pub fn parse(s: &str) -> Result<Value, String> {
        let mut p = Parser { s: s.as_bytes(), i: 0 };
        let v = p.value()?;
        if p.i != p.s.len() {
            return Err(format!("trailing text at {}", p.i));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }
        fn eat(&mut self, b: u8) -> Result<(), String> {
            if self.peek() == Some(b) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected {:?} at {}", b as char, self.i))
            }
        }
        fn lit(&mut self, word: &str, v: Value) -> Result<Value, String> {
            if self.s[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                Ok(v)
            } else {
                Err(format!("bad literal at {}", self.i))
            }
        }
        fn value(&mut self) -> Result<Value, String> {
            match self.peek().ok_or("unexpected end")? {
                b'n' => self.lit("null", Value::Null),
                b't' => self.lit("true", Value::Bool(true)),
                b'f' => self.lit("false", Value::Bool(false)),
                b'"' => self.string().map(Value::Str),
                b'[' => {
                    self.i += 1;
                    let mut a = Vec::new();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::Arr(a));
                    }
                    loop {
                        a.push(self.value()?);
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Arr(a));
                            }
                            _ => return Err(format!("bad array at {}", self.i)),
                        }
                    }
                }
                b'{' => {
                    self.i += 1;
                    let mut e = Vec::new();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Value::Obj(e));
                    }
                    loop {
                        let k = self.string()?;
                        self.eat(b':')?;
                        e.push((k, self.value()?));
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Obj(e));
                            }
                            _ => return Err(format!("bad object at {}", self.i)),
                        }
                    }
                }
                _ => self.number(),
            }
        }
        fn number(&mut self) -> Result<Value, String> {
            let start = self.i;
            if self.peek() == Some(b'-') {
                self.i += 1;
            }
            let digits = |p: &mut Self| {
                let s = p.i;
                while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                    p.i += 1;
                }
                p.i > s
            };
            if self.peek() == Some(b'0') {
                self.i += 1;
            } else if !digits(self) {
                return Err(format!("bad number at {start}"));
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
                if !digits(self) {
                    return Err(format!("bad fraction at {start}"));
                }
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                if !digits(self) {
                    return Err(format!("bad exponent at {start}"));
                }
            }
            Ok(Value::Num(String::from_utf8(self.s[start..self.i].to_vec()).unwrap()))
        }
        fn string(&mut self) -> Result<String, String> {
            self.eat(b'"')?;
            let mut out = Vec::new();
            loop {
                let b = self.peek().ok_or("unterminated string")?;
                self.i += 1;
                match b {
                    b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                    b'\\' => {
                        let e = self.peek().ok_or("bad escape")?;
                        self.i += 1;
                        let c = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'u' => {
                                let hex = std::str::from_utf8(self.s.get(self.i..self.i + 4).ok_or("short \\u")?)
                                    .map_err(|e| e.to_string())?;
                                self.i += 4;
                                let cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                char::from_u32(cp).ok_or("surrogate escapes are not produced")?
                            }
                            _ => return Err(format!("bad escape at {}", self.i)),
                        };
                        let mut buf = [0; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    0x00..=0x1f => return Err(format!("raw control character in string at {}", self.i - 1)),
                    b => out.push(b),
                }
            }
        }
    }
}
