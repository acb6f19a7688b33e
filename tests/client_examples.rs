//! Every program in `examples/` runs against the local broker (and the TLS node) and
//! prints what it should. docs/guide.md points at them; its own code blocks are compiled
//! as the doctests of `warren::guide`.
//!
//! The binaries are the ones cargo builds beside this test (`cargo test` and
//! `cargo nextest run` build the examples of the package unless told to build tests
//! only; `cargo build --examples` builds them for a targeted run).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The path of example `name`, built beside this test binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let path = dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the examples (cargo build --examples), or run scripts/test.sh",
        path.display()
    );
    path
}

/// Runs example `name` with `args` to its end (at most `secs`), and returns its stdout;
/// fails if it exits non-zero.
fn run(name: &str, args: &[&str], secs: u64) -> String {
    let mut child = Command::new(example(name))
        .args(args)
        .env("AMQP_URL", amqp_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "example {name} ran longer than {secs} s; it printed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "example {name} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

#[tokio::test]
async fn reliable_publisher_confirms_ten_and_gets_one_back() {
    let out = tokio::task::spawn_blocking(|| run("reliable_publisher", &[], 60))
        .await
        .unwrap();
    assert!(out.contains("10 orders confirmed, 1 returned"), "{out}");
    // The example leaves its orders in its queue; take them away.
    let (conn, ch) = channel().await;
    let purged = ch.queue_purge("warren.example.orders").await.unwrap();
    assert!(purged >= 10, "the confirmed orders are not in the queue: {purged}");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn reliable_consumer_retries_deduplicates_and_parks() {
    let out = tokio::task::spawn_blocking(|| run("reliable_consumer", &[], 90))
        .await
        .unwrap();
    for line in [
        "m1: done (attempt 0)",
        "m1: duplicate, skipped",
        "m2: downstream timed out; retry 1 in 100 ms",
        "m2: downstream timed out; retry 2 in 200 ms",
        "m2: done (attempt 2)",
        "m3: cannot parse the order; dead-lettered to warren.example.work.parked",
        "m4: downstream unavailable; retry 3 in 400 ms",
        "m4: downstream unavailable; out of retries, dead-lettered to warren.example.work.parked",
        "2 message(s) parked for inspection",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
}

#[tokio::test]
async fn rpc_squares_over_direct_reply_to() {
    let out = tokio::task::spawn_blocking(|| run("rpc", &[], 60)).await.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["1² = 1", "2² = 4", "3² = 9", "4² = 16", "5² = 25"], "{out}");
}

#[tokio::test]
async fn tls_connects_with_plain_and_external() {
    tls_dir(); // fails with a hint when the TLS node's certificates are not there
    let out = tokio::task::spawn_blocking(|| {
        let plain = run("tls", &[], 60);
        let external = run("tls", &["--external"], 60);
        plain + &external
    })
    .await
    .unwrap();
    assert!(out.contains("connected over TLS to RabbitMQ"), "{out}");
    assert!(out.contains("(PLAIN)") && out.contains("(EXTERNAL)"), "{out}");
}

/// The Prometheus endpoint, scraped as Prometheus would: a GET, a text page with the
/// counters of the example's traffic and the depth of its queue.
#[tokio::test]
async fn prometheus_serves_the_metrics_in_text_format() {
    let page = tokio::task::spawn_blocking(|| {
        let mut child = Command::new(example("prometheus"))
            .env("AMQP_URL", amqp_url())
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("SCRAPES", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the prometheus example");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("serving http://")
            .and_then(|a| a.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("the example's first line: {first:?}"))
            .to_owned();
        let get = |path: &str| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n").unwrap();
            let mut response = String::new();
            s.read_to_string(&mut response).unwrap();
            response
        };
        let missing = get("/");
        let page = get("/metrics");
        let status = child.wait().unwrap();
        assert!(status.success(), "the example exited with {status}");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        page
    })
    .await
    .unwrap();
    let (head, body) = page.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|l| l.trim().parse().ok())
        .expect("Content-Length");
    assert_eq!(length, body.len());
    // Every sample is `name{labels} value` with a HELP and a TYPE before it.
    let mut samples = std::collections::HashMap::new();
    let mut typed = std::collections::HashSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(kind == "counter" || kind == "gauge", "{line}");
            typed.insert(name.to_owned());
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
            let name = series.split('{').next().unwrap();
            assert!(typed.contains(name), "{name} has no # TYPE");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
            samples.insert(series.to_owned(), value);
        }
    }
    let get = |k: &str| *samples.get(k).unwrap_or_else(|| panic!("no {k} in:\n{body}"));
    assert_eq!(get("warren_published_total"), 10.0);
    assert_eq!(get("warren_confirmed_total"), 10.0);
    assert_eq!(get("warren_delivered_total"), 10.0);
    assert!(get("warren_acks_total") >= 1.0);
    assert_eq!(get("warren_unknown_outcome_total"), 0.0);
    assert_eq!(get("warren_connection_up"), 1.0);
    assert_eq!(get("warren_connection_blocked"), 0.0);
    assert_eq!(
        get("warren_queue_messages_ready{queue=\"warren.example.monitored\"}"),
        0.0
    );
    assert_eq!(get("warren_queue_consumers{queue=\"warren.example.monitored\"}"), 1.0);
}
