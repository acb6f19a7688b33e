//! `warren perf`'s load, topology, body and consumer options against the real broker
//! (scripts/broker.sh starts one; `AMQP_URL` points elsewhere). These tests fail, never
//! skip, when no broker answers. Each run is small; no assertion depends on speed, only
//! on bounds a rate limiter must keep (never faster than asked).

mod common;

use common::{Json, amqp_url, check_clean, num, perf_json, perf_json_exit, text, usage_error, with_declared_queue};

/// An exchange name no other test uses.
fn exchange(tag: &str) -> String {
    format!("warren-perf-test-{tag}-{}", std::process::id())
}

/// The most messages a token bucket may have let through by `t` seconds: the schedule's
/// `(rate, seconds)` steps, repeated, integrated up to `t`, plus the first token and, per
/// step, one full bucket (10 ms at its rate) and a token of rounding.
fn max_tokens(steps: &[(f64, f64)], t: f64) -> f64 {
    let (mut total, mut at) = (1.0, 0.0);
    'passes: loop {
        for &(rate, len) in steps {
            if at >= t {
                break 'passes;
            }
            total += rate * len.min(t - at) + rate * 0.010 + 1.0;
            at += len;
        }
    }
    total
}

#[test]
fn rate_never_exceeds_the_bucket() {
    let obj = perf_json(&["--rate", "400", "--duration", "1.5"]);
    let published = num(&obj, "published");
    check_clean(&obj, published);
    // The last publish was before its confirm: `publish_seconds` bounds its time.
    let bound = max_tokens(&[(400.0, f64::MAX)], num(&obj, "publish_seconds"));
    assert!(
        published > 0.0 && published <= bound,
        "{published} published, at most {bound}"
    );
    assert_eq!(text(&obj, "rate"), "400");
}

#[test]
fn variable_rate_schedule_runs_one_pass() {
    // 300/s for 0.5 s, a pause of 0.5 s, then 100/s for 0.5 s: one pass, 1.5 s.
    let obj = perf_json(&["-r", "300:500ms,0:0.5,100:0.5s", "-x", "1"]);
    let published = num(&obj, "published");
    check_clean(&obj, published);
    let steps = [(300.0, 0.5), (0.0, 0.5), (100.0, 0.5)];
    let bound = max_tokens(&steps, num(&obj, "publish_seconds"));
    assert!(
        published > 0.0 && published <= bound,
        "{published} published, at most {bound}"
    );
    assert_eq!(text(&obj, "rate"), "300:0.5s,0:0.5s,100:0.5s");
    // PerfTest's spelling of a schedule.
    let obj = perf_json(&["--variable-rate", "200:0.5", "--variable-rate", "0:0.5"]);
    let bound = max_tokens(&[(200.0, 0.5), (0.0, 0.5)], num(&obj, "publish_seconds"));
    assert!(num(&obj, "published") <= bound);
    assert_eq!(text(&obj, "rate"), "200:0.5s,0:0.5s");
}

#[test]
fn consumer_rate_and_latency_slow_the_consumer() {
    // 200 messages at most 1000/s per consumer (a bucket holds 10 ms of them), 300 µs of
    // work each: the last delivery cannot come before 0.18 s.
    let obj = perf_json(&["-C", "200", "--consumer-rate", "1000", "-L", "300"]);
    check_clean(&obj, 200.0);
    assert!(num(&obj, "consume_seconds") >= 0.18, "{obj:?}");
    assert_eq!(num(&obj, "consumer_rate"), 1000.0);
}

#[test]
fn queues_and_channels_spread_the_load() {
    let obj = perf_json(&["--queues", "3", "-x", "2", "-X", "2", "-y", "1", "-Y", "3", "-C", "900"]);
    check_clean(&obj, 900.0);
    assert_eq!((num(&obj, "queues"), num(&obj, "copies")), (3.0, 1.0));
    assert_eq!(
        (num(&obj, "producer_channels"), num(&obj, "consumer_channels")),
        (2.0, 3.0)
    );
}

#[test]
fn fanout_delivers_a_copy_to_every_queue() {
    let ex = exchange("fanout");
    let obj = perf_json(&["-e", &ex, "-t", "fanout", "--queues", "3", "-y", "3", "-C", "300"]);
    check_clean(&obj, 300.0);
    assert_eq!((num(&obj, "copies"), num(&obj, "consumed")), (3.0, 900.0));
    assert_eq!(text(&obj, "exchange"), format!("fanout exchange {ex}"));
}

#[test]
fn topic_direct_and_headers_routing() {
    // One routing key for all queues: every queue gets every message.
    let ex = exchange("topic");
    let obj = perf_json(&[
        "-e", &ex, "-t", "topic", "-k", "a.b", "--queues", "2", "-y", "2", "-C", "200",
    ]);
    check_clean(&obj, 200.0);
    assert_eq!(num(&obj, "consumed"), 400.0);
    // A random key per message: each message goes to exactly one queue.
    for kind in ["direct", "topic", "headers"] {
        let ex = exchange(&format!("random-{kind}"));
        let obj = perf_json(&["-e", &ex, "-t", kind, "-K", "--queues", "3", "-y", "3", "-C", "300"]);
        check_clean(&obj, 300.0);
        assert_eq!((num(&obj, "copies"), num(&obj, "consumed")), (1.0, 300.0), "{kind}");
    }
    let ex = exchange("headers");
    let obj = perf_json(&["-e", &ex, "-t", "headers", "--queues", "2", "-y", "2", "-C", "100"]);
    check_clean(&obj, 100.0);
    assert_eq!(num(&obj, "consumed"), 200.0);
}

#[test]
fn queue_flags_and_arguments() {
    let obj = perf_json(&["--exclusive", "--queues", "3", "-y", "2", "-Y", "2", "-C", "300"]);
    check_clean(&obj, 300.0);
    let obj = perf_json(&["--auto-delete", "--queues", "2", "-y", "2", "-C", "200"]);
    check_clean(&obj, 200.0);
    let obj = perf_json(&[
        "--queue-args",
        "x-max-priority=5,x-queue-mode=default",
        "--priority",
        "3",
        "-C",
        "200",
        "--no-mandatory",
        "-f",
        "persistent",
    ]);
    check_clean(&obj, 200.0);
    assert_eq!(obj.get("persistent"), Some(&Json::Bool(true)));
    // A queue argument the broker refuses fails the run, with the broker's word.
    let (obj, _) = perf_json_exit(&["--queue-args", "x-max-length=not-a-number", "-C", "10"], 3);
    let err = text(&obj, "error");
    assert!(err.contains("declaring queue") && err.contains("x-max-length"), "{err}");
}

#[test]
fn predeclared_queue_is_used_and_kept() {
    let queue = format!("warren-perf-test-predeclared-{}", std::process::id());
    with_declared_queue(&queue, async |ch| {
        use warren::client::QueueDeclareOptions;
        use warren::wire::FieldTable;
        let obj = perf_json(&["--predeclared", "-u", &queue, "-C", "300"]);
        check_clean(&obj, 300.0);
        // Still there, and empty.
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let info = ch
            .queue_declare(&queue, passive, FieldTable::new())
            .await
            .expect("kept");
        assert_eq!(info.message_count, 0);
        // A queue with messages in it cannot be checked: refused, with the reason.
        // Confirmed: the message is in the queue before perf looks.
        ch.confirm_select().await.unwrap();
        let confirmed = ch
            .basic_publish("", &queue, Default::default(), Default::default(), "x")
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirmed.is_ack(), "{confirmed:?}");
        let (obj, _) = perf_json_exit(&["-p", "-u", &queue, "-C", "10"], 3);
        assert!(text(&obj, "error").contains("holds 1 messages"), "{obj:?}");
    });
}

#[test]
fn variable_sizes_and_perftest_bodies() {
    let obj = perf_json(&["--size", "100,2000,70000", "-C", "300"]);
    check_clean(&obj, 300.0);
    let mean = num(&obj, "size");
    assert!(mean > 100.0 && mean < 70_000.0, "mean size {mean}");
    assert_eq!(text(&obj, "sizes"), "100,2000,70000");
    let obj = perf_json(&["--size", "50:5000", "-C", "300"]);
    check_clean(&obj, 300.0);
    assert!((50.0..=5000.0).contains(&num(&obj, "size")));
    for (format, size) in [("perftest", "12"), ("perftest-millis", "64")] {
        let obj = perf_json(&["--body", format, "-s", size, "-C", "300"]);
        check_clean(&obj, 300.0);
        assert_eq!(text(&obj, "body"), format);
    }
    let obj = perf_json(&["--use-millis", "-C", "50"]);
    assert_eq!(text(&obj, "body"), "perftest-millis");
}

#[test]
fn nack_requeue_and_drop() {
    let obj = perf_json(&["--nack", "0.2", "-C", "500"]);
    check_clean(&obj, 500.0);
    assert!(num(&obj, "consumer_nacks") > 0.0, "{obj:?}");
    assert_eq!(
        num(&obj, "consumed"),
        500.0,
        "requeued messages come back and are acked"
    );
    let obj = perf_json(&["--nack", "0.2", "--nack-requeue", "false", "-C", "500"]);
    check_clean(&obj, 500.0);
    let dropped = num(&obj, "nack_dropped");
    assert!(dropped > 0.0);
    assert_eq!(
        num(&obj, "consumed") + dropped,
        500.0,
        "dropped ones are not counted lost"
    );
}

#[test]
fn consumers_that_stop_early_leave_the_rest_counted() {
    let obj = perf_json(&["-C", "1000", "-D", "300", "-q", "50"]);
    assert_eq!((num(&obj, "consumed"), num(&obj, "left_in_queues")), (300.0, 700.0));
    assert_eq!((num(&obj, "lost"), num(&obj, "duplicates")), (0.0, 0.0));
    let obj = perf_json(&["-C", "1000", "--consume-after-publish"]);
    check_clean(&obj, 1000.0);
    // The consume rate counts from when consumers subscribed, after the last publish.
    assert!(
        num(&obj, "consume_start_seconds") >= num(&obj, "publish_seconds") - 0.001,
        "{obj:?}"
    );
    let obj = perf_json(&[
        "-x",
        "2",
        "--pmessages",
        "150",
        "-e",
        &exchange("fan0"),
        "-t",
        "fanout",
        "--queues",
        "2",
        "-y",
        "0",
    ]);
    assert_eq!((num(&obj, "published"), num(&obj, "left_in_queues")), (300.0, 600.0));
    assert_eq!(num(&obj, "lost"), 0.0);
}

#[test]
fn perftest_short_options() {
    let queue = format!("warren-perf-test-short-{}", std::process::id());
    let ex = exchange("short");
    let obj = perf_json(&[
        "-x",
        "1",
        "-y",
        "1",
        "-r",
        "2000",
        "-R",
        "5000",
        "-e",
        &ex,
        "-t",
        "direct",
        "-k",
        "key",
        "-u",
        &queue,
        "-q",
        "100",
        "-c",
        "50",
        "-A",
        "10",
        "-L",
        "50",
        "-f",
        "persistent",
        "-f",
        "mandatory",
        "-s",
        "64",
        "-z",
        "5",
        "-C",
        "300",
        "--multi-ack-every",
        "20",
    ]);
    check_clean(&obj, 300.0);
    assert_eq!(text(&obj, "queue"), queue);
    assert_eq!(text(&obj, "ack"), "multiple:20");
    assert_eq!(
        (num(&obj, "prefetch"), num(&obj, "confirm_window"), num(&obj, "size")),
        (100.0, 50.0, 64.0)
    );
}

#[test]
fn combinations_the_check_cannot_follow_are_refused() {
    for (args, why) in [
        (&["--nack", "0.1", "-a"][..], "auto-acknowledged"),
        (&["--queues", "3", "-y", "2"], "every queue needs a consumer"),
        (&["--exclusive", "-y", "0"], "exclusive queue"),
        (&["-D", "5", "--auto-delete"], "auto-delete queue vanishes"),
        (&["-D", "5", "--ack", "auto"], "no-ack"),
        (&["-e", "x", "-t", "fanout", "-K"], "fanout ignores routing keys"),
        (&["--predeclared"], "--queue NAME"),
        (&["-x", "0"], "numbered messages"),
        (&["--body", "perftest", "-C", "3000000000"], "4 bytes"),
        (&["--rate", "0"], "above 0"),
        (&["--scenario", "nope"], "flat-out"),
    ] {
        let stderr = usage_error(args);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

#[test]
fn perftest_bodies_read_by_another_client() {
    // warren perf publishes PerfTest bodies into a kept queue; pika (Python) reads them:
    // a 4-byte sequence number and an 8-byte CLOCK_MONOTONIC time in ns, which is what
    // Python's time.monotonic_ns() reads on Linux (and Java's System.nanoTime()).
    let queue = format!("warren-perf-test-perftest-body-{}", std::process::id());
    let url = amqp_url();
    with_declared_queue(&queue, async |_| {
        let obj = perf_json(&[
            "-p", "-u", &queue, "-y", "0", "--body", "perftest", "-s", "20", "-C", "50",
        ]);
        assert_eq!((num(&obj, "left_in_queues"), num(&obj, "lost")), (50.0, 0.0));
        let script = r#"
import json, struct, sys, time, pika
params = pika.URLParameters(sys.argv[1])
conn = pika.BlockingConnection(params)
ch = conn.channel()
seqs, ages = [], []
while True:
    method, props, body = ch.basic_get(sys.argv[2], auto_ack=True)
    if method is None:
        break
    seq, stamp = struct.unpack(">iq", body[:12])
    seqs.append(seq)
    ages.append((time.monotonic_ns() - stamp) / 1e9)
    assert len(body) == 20, len(body)
conn.close()
print(json.dumps({"seqs": sorted(seqs), "max_age": max(ages), "min_age": min(ages)}))
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script, &url, &queue])
            .output()
            .expect("python3 (scripts/test-deps.sh installs it with pika)");
        assert!(
            out.status.success(),
            "pika reader: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let Ok(Json::Object(read)) = Json::parse(String::from_utf8_lossy(&out.stdout).trim()) else {
            panic!("{}", String::from_utf8_lossy(&out.stdout))
        };
        let Some(Json::Array(seqs)) = read.get("seqs") else {
            panic!("{read:?}")
        };
        let want: Vec<Json> = (0..50).map(|i| Json::Number(f64::from(i))).collect();
        assert_eq!(seqs, &want, "every sequence number once");
        // Same clock: the messages are seconds old at most, never from the future.
        let (min, max) = (num(&read, "min_age"), num(&read, "max_age"));
        assert!(min >= 0.0 && max < 120.0, "ages {min} .. {max} s");
    });
}
