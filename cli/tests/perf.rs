//! `warren perf` against the real broker (scripts/broker.sh starts one; `AMQP_URL`
//! points elsewhere). These tests fail, never skip, when no broker answers.

mod common;

use common::{Json, check_clean, num, perf, perf_json};

#[test]
fn confirms_and_per_message_acks_lose_nothing() {
    let obj = perf_json(&[
        "--count",
        "2000",
        "-x",
        "2",
        "-y",
        "2",
        "--confirm",
        "100",
        "--prefetch",
        "100",
    ]);
    check_clean(&obj, 2000.0);
    assert_eq!(num(&obj, "confirmed"), 2000.0);
    assert_eq!(num(&obj, "acked"), 2000.0);
    assert_eq!(num(&obj, "unknown"), 0.0);
    assert_eq!(num(&obj, "recoveries"), 0.0);
}

#[test]
fn multiple_acks_durable_persistent() {
    let obj = perf_json(&[
        "--count",
        "2000",
        "--ack",
        "multiple:64",
        "--durable",
        "--persistent",
        "--size",
        "100",
    ]);
    check_clean(&obj, 2000.0);
    assert_eq!(num(&obj, "acked"), 2000.0);
    assert_eq!(num(&obj, "size"), 100.0);
}

#[test]
fn quorum_queue_auto_ack_without_confirms() {
    let obj = perf_json(&["--count", "1000", "--quorum", "--ack", "auto", "--confirm", "0"]);
    check_clean(&obj, 1000.0);
    assert_eq!(num(&obj, "confirmed"), 0.0);
    assert_eq!(obj.get("queue_type"), Some(&Json::String("quorum".into())));
}

#[test]
fn publish_only_counts_the_queue() {
    let obj = perf_json(&["--count", "500", "-y", "0"]);
    assert_eq!(num(&obj, "published"), 500.0);
    assert_eq!(num(&obj, "confirmed"), 500.0);
    assert_eq!(num(&obj, "consumed"), 0.0);
    assert_eq!(num(&obj, "lost"), 0.0);
}

#[test]
fn bad_usage_exits_2() {
    let out = perf(&["--size", "4"]);
    assert_eq!(out.status.code(), Some(2));
    let out = perf(&["--no-such-option"]);
    assert_eq!(out.status.code(), Some(2));
    let out = perf(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--confirm"));
}

#[test]
fn unreachable_broker_exits_3_with_json() {
    let out = perf(&[
        "--uri",
        "amqp://guest:guest@127.0.0.1:1/%2f",
        "--count",
        "10",
        "--json",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let Ok(Json::Object(obj)) = Json::parse(stdout.trim()) else {
        panic!("not JSON: {stdout}")
    };
    assert_eq!(obj.get("ok"), Some(&Json::Bool(false)));
    assert!(
        matches!(obj.get("error"), Some(Json::String(e)) if e.contains("cannot connect")),
        "{obj:?}"
    );
}

#[test]
fn json_parser_self_check() {
    assert!(Json::parse(r#"{"a":1,"b":[true,null,"x\"y"],"c":-1.5e3}"#).is_ok());
    assert!(Json::parse(r#"{"a":1,}"#).is_err());
    assert!(Json::parse(r#"{"a":1}{"#).is_err());
    assert!(Json::parse(r#"{"a":01}"#).is_err());
}
