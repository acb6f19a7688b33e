//! The private RabbitMQ node the fault tests own (`scripts/fault-node.sh`): node
//! `warren-fault@localhost`, AMQP on 5692, its own data under `/tmp/warren-fault-node`.
//! These helpers may stop, restart, kill and memory-alarm it. The shared default node on
//! 5672 is never stopped by anything here; on it, only connections the tests named
//! themselves are closed ([`close_named_default`]).
//!
//! Broker-level faults hit every connection of the node, so every test that uses the node
//! holds [`exclusive`] for its whole run (a `flock`, so it works across the processes of
//! `cargo nextest` too; the script also serializes start/stop with its own lock).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The node's AMQP port.
pub const PORT: u16 = 5692;
/// The node's name, for `rabbitmqctl -n`.
pub const NODE: &str = "warren-fault@localhost";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/fault-node.sh")
}

/// Runs `scripts/fault-node.sh ARGS`, returning its stdout; panics with its output on failure.
pub fn run(args: &[&str]) -> String {
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/fault-node.sh {args:?}: {e}"));
    if !out.status.success() {
        panic!(
            "scripts/fault-node.sh {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "[fault-node] {} ({:.1} s)",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Async wrapper of [`run`] (the script blocks for seconds).
pub async fn run_async(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .expect("fault-node.sh task")
}

/// Starts the node once per test process (keeping its data) and returns its URI,
/// `amqp://guest:guest@127.0.0.1:5692`.
///
/// Never wipes data: tests run in parallel processes, and a process that finds the node down
/// because another test killed it must start it with that test's durable messages intact.
pub fn ensure_started() -> String {
    static URI: OnceLock<String> = OnceLock::new();
    URI.get_or_init(|| run(&["start"])).clone()
}

/// The lines of the node's log that contain `text`, oldest first (none when the log cannot
/// be read): evidence for a failure message.
pub async fn log_lines_containing(text: &str) -> Vec<String> {
    let dir = std::env::var("WARREN_FAULT_NODE_DIR").unwrap_or_else(|_| "/tmp/warren-fault-node".into());
    let path = PathBuf::from(dir).join(format!("log/{NODE}.log"));
    let log = tokio::fs::read(&path).await.unwrap_or_default();
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.contains(text))
        .map(str::to_owned)
        .collect()
}

/// The node's AMQP address.
pub fn addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], PORT))
}

/// Held by a test that uses the private node, for as long as it runs: an exclusive `flock`
/// on `/tmp/warren-fault-node.tests.lock`, so tests serialize across threads (`cargo test`)
/// and processes (`cargo nextest`, one process per test). Released on drop.
pub struct Exclusive {
    _file: std::fs::File,
}

/// Takes the private node for the calling test (see [`Exclusive`]), waiting up to 10 minutes.
pub async fn exclusive() -> Exclusive {
    let file = tokio::task::spawn_blocking(super::node_lock::take)
        .await
        .expect("lock task");
    Exclusive { _file: file }
}

/// Makes sure the node runs with its application started (e.g. after a test that failed
/// between `stop_app` and `start_app`).
pub async fn ensure_app_running() {
    ensure_started();
    run_async(&["start"]).await;
}

/// `rabbitmqctl stop_app`: every connection drops, the listener closes (connects are refused).
pub async fn stop_app() {
    run_async(&["stop_app"]).await;
}

/// `rabbitmqctl start_app`, waiting until the AMQP port accepts TCP.
pub async fn start_app() {
    run_async(&["start_app"]).await;
}

/// Stops the application, waits `down`, starts it again.
pub async fn restart_app(down: Duration) {
    stop_app().await;
    tokio::time::sleep(down).await;
    start_app().await;
}

/// Stops and starts the whole node (same data).
pub async fn restart_node() {
    run_async(&["restart"]).await;
}

/// SIGKILLs the node's VM and starts it again with the same data, in one locked step of
/// the script.
pub async fn kill_and_start() {
    run_async(&["kill-start"]).await;
}

/// Raises (`true`) or clears (`false`) the memory alarm, returning once the node's alarm
/// list says so: publishers get `connection.blocked`.
pub async fn memory_alarm(on: bool) {
    run_async(&["alarm", if on { "on" } else { "off" }]).await;
}

/// Closes the node's connections whose `connection_name` is `name` (320 CONNECTION_FORCED
/// with `why`); returns how many.
pub async fn close_named(name: &str, why: &str) -> usize {
    run_async(&["close", name, why]).await.trim().parse().unwrap_or(0)
}

/// Closes every client connection of the node; returns how many.
pub async fn close_all(why: &str) -> usize {
    run_async(&["close-all", why]).await.trim().parse().unwrap_or(0)
}

/// `rabbitmqctl -n NODE ARGS` (e.g. `list_queues name messages`).
pub async fn ctl(args: &[&str]) -> String {
    let mut all = vec!["ctl"];
    all.extend_from_slice(args);
    run_async(&all).await
}

/// `rabbitmqctl -n NODE ARGS`, ignoring failure (e.g. deleting what may not exist).
pub async fn ctl_lenient(args: &[&str]) -> bool {
    let mut all = vec!["ctl".to_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(script())
            .args(&all)
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .await
    .unwrap_or(false)
}

/// Closes the connections named `name` on the shared default node (5672). Only connections
/// the calling test named itself: other tests use that node at the same time.
pub async fn close_named_default(name: &str, why: &str) -> usize {
    assert!(
        name.starts_with("warren-"),
        "only close connections the tests named (warren-...)"
    );
    let expr = format!(
        "N = <<\"{}\"/utf8>>, L = [proplists:get_value(pid, I) || I <- rabbit_networking:connection_info_all([pid, client_properties]), \
         lists:member({{<<\"connection_name\">>, longstr, N}}, proplists:get_value(client_properties, I, []))], \
         [rabbit_networking:close_connection(P, \"{}\") || P <- L], length(L).",
        name.replace('\\', "\\\\").replace('"', "\\\""),
        why.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["30", "rabbitmqctl", "-q", "eval", &expr])
            .output()
    })
    .await
    .expect("rabbitmqctl task")
    .expect("run rabbitmqctl");
    assert!(
        out.status.success(),
        "rabbitmqctl eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}
