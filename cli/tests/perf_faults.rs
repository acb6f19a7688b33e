//! `warren perf` through faults, against the private fault node (`scripts/fault-node.sh`,
//! `warren-fault@localhost` on 5692): the broker closes the run's connections every
//! two seconds, the library recovers them, and the count stays exact. These tests fail,
//! never skip, when the node cannot be started.
//!
//! They hold the fault node's test lock (the one `tests/fault_support/node.rs` takes), so
//! no other test uses the node while its connections are being closed.

mod common;
#[path = "../../tests/fault_support/node_lock.rs"]
mod node_lock;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Json, num};

const URI: &str = "amqp://guest:guest@127.0.0.1:5692/%2f";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/fault-node.sh")
}

/// Runs `scripts/fault-node.sh ARGS`; its stdout. Panics with its output on failure.
fn fault_node(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/fault-node.sh {args:?}: {e}"));
    assert!(
        out.status.success(),
        "scripts/fault-node.sh {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The fault node's test lock, held for the whole test (see `node_lock`).
fn exclusive() -> std::fs::File {
    node_lock::take()
}

/// What to cut every two seconds.
enum Cut {
    /// Every connection of the node.
    All,
    /// The connections with these names.
    Named(&'static [&'static str]),
}

/// Runs `warren perf --uri <fault node> ARGS --json` while the broker closes connections
/// every two seconds; returns the exit code, the JSON object, stderr, and how many
/// connections were closed.
fn perf_with_cuts(args: &[&str], cut: Cut) -> (i32, BTreeMap<String, Json>, String, u64) {
    let _lock = exclusive();
    fault_node(&["start"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["perf", "--uri", URI, "--json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the warren binary");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut closed = 0u64;
    let mut next_cut = Instant::now() + Duration::from_secs(2);
    while child.try_wait().expect("wait for warren perf").is_none() {
        assert!(Instant::now() < deadline, "warren perf still runs after 120 s");
        if Instant::now() >= next_cut {
            let counts = match cut {
                Cut::All => vec![fault_node(&["close-all", "perf fault test"])],
                Cut::Named(names) => names
                    .iter()
                    .map(|n| fault_node(&["close", n, "perf fault test"]))
                    .collect(),
            };
            for c in counts {
                closed += c.parse::<u64>().unwrap_or_else(|_| panic!("close printed {c:?}"));
            }
            next_cut = Instant::now() + Duration::from_secs(2);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("warren perf output");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("--- stderr of warren perf {args:?}:\n{stderr}");
    let obj = match Json::parse(stdout.trim()) {
        Ok(Json::Object(map)) => map,
        other => panic!("not a JSON object: {other:?} in {stdout:?}"),
    };
    (out.status.code().unwrap_or(-1), obj, stderr, closed)
}

/// The exact count, whatever the faults: every publish is confirmed or of unknown
/// outcome, every distinct message consumed is a confirmed one or an unknown one that
/// arrived, and the duplicates are split without a remainder.
fn check_exact(obj: &BTreeMap<String, Json>) {
    assert!(num(obj, "published") > 0.0);
    assert_eq!(
        num(obj, "published"),
        num(obj, "confirmed") + num(obj, "unknown"),
        "every publish is confirmed or of unknown outcome (no nacks here)"
    );
    assert_eq!(
        num(obj, "consumed"),
        num(obj, "confirmed") + num(obj, "unknown_arrived"),
        "what was consumed: the confirmed messages, and the unknown ones that arrived"
    );
    assert_eq!(
        num(obj, "duplicates"),
        num(obj, "duplicates_redelivered") + num(obj, "duplicates_unexplained")
    );
    assert_eq!(num(obj, "lost"), 0.0);
    assert_eq!(num(obj, "duplicates_unexplained"), 0.0);
    assert_eq!(num(obj, "corrupt"), 0.0);
}

#[test]
fn connections_closed_every_two_seconds_lose_nothing() {
    let (code, obj, stderr, closed) = perf_with_cuts(&["-z", "8", "-x", "2", "-y", "2"], Cut::All);
    assert!(closed > 0, "the broker closed connections");
    assert_eq!(code, 0, "a fault is not a failed run");
    assert_eq!(obj.get("ok"), Some(&Json::Bool(true)));
    assert_eq!(obj.get("error"), Some(&Json::Null));
    check_exact(&obj);
    assert!(num(&obj, "recoveries") > 0.0, "the connections recovered");
    assert!(num(&obj, "recovery_max_seconds") > 0.0);
    assert!(
        num(&obj, "confirm_gap_max_seconds") > 0.0,
        "the stall of publishing is measured"
    );
    assert_eq!(num(&obj, "republished"), 0.0, "republishing is opt-in");
    assert!(
        stderr.contains("  recoveries "),
        "the live line shows the recoveries and the unknowns"
    );
    assert!(stderr.contains("unknown outcome"), "the summary shows the unknowns");
}

#[test]
fn republished_copies_are_expected_duplicates() {
    // Only the publishers' connections are cut: the consumers never recover, so a copy of
    // a republished message is the one explanation of a duplicate without the redelivered flag.
    let (code, obj, _, closed) = perf_with_cuts(
        &["-z", "6", "-x", "2", "-y", "2", "--republish", "--quiet"],
        Cut::Named(&["warren-perf producer 0", "warren-perf producer 1"]),
    );
    assert!(closed > 0, "the broker closed the publishers' connections");
    assert_eq!(code, 0);
    check_exact(&obj);
    assert_eq!(
        num(&obj, "unknown"),
        0.0,
        "the library republished every pending publish"
    );
    assert!(num(&obj, "republished") > 0.0, "publishes were pending at the cuts");
    assert_eq!(
        num(&obj, "duplicates_republished"),
        num(&obj, "duplicates"),
        "no consumer recovered: every duplicate is a republished copy"
    );
}

#[test]
fn exactly_once_check_fails_a_run_with_faults() {
    let (code, obj, stderr, closed) = perf_with_cuts(
        &["-z", "5", "-x", "2", "-y", "2", "--exactly-once-check", "--quiet"],
        Cut::All,
    );
    assert!(closed > 0);
    check_exact(&obj);
    assert!(
        num(&obj, "unknown") + num(&obj, "duplicates") > 0.0,
        "cuts under a full confirm window leave unknown outcomes (or duplicates)"
    );
    assert_eq!(code, 1, "strict mode fails the check");
    assert_eq!(obj.get("ok"), Some(&Json::Bool(false)));
    assert!(stderr.contains("(--exactly-once-check)"), "the verdict says why");
}

/// Clears the fault node's memory alarm when dropped, so a failed assertion does not leave
/// the node blocking every later test's publishers.
struct AlarmOn;

impl AlarmOn {
    fn raise() -> Self {
        fault_node(&["alarm", "on"]);
        AlarmOn
    }
}

impl Drop for AlarmOn {
    fn drop(&mut self) {
        fault_node(&["alarm", "off"]);
    }
}

/// A broker in a memory alarm blocks publishing: it takes no publish and confirms none
/// until the alarm clears. The run still ends at its `--duration`: a publish still waiting
/// is given up unsent, confirms get `--drain-timeout` more and are then counted as
/// unknown (not lost), and the producers' connections, which the broker does not read,
/// are dropped after the same bound. Before, the run waited for the alarm to clear.
#[test]
fn a_run_ends_on_time_while_the_broker_blocks_publishing() {
    let _lock = exclusive();
    fault_node(&["start"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args([
            "perf",
            "--uri",
            URI,
            "--json",
            "-z",
            "4",
            "--drain-timeout",
            "2",
            "-x",
            "1",
            "-y",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the warren binary");
    std::thread::sleep(Duration::from_millis(1500));
    let alarm = AlarmOn::raise();
    // The alarm stays on for a minute: a run that waits for it to clear is still running.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait for warren perf").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("warren perf still runs 60 s into the alarm, past its --duration");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("warren perf output");
    drop(alarm);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("--- stderr of warren perf:\n{stderr}");
    let obj = match Json::parse(String::from_utf8(out.stdout).expect("utf-8 stdout").trim()) {
        Ok(Json::Object(map)) => map,
        other => panic!("not a JSON object: {other:?}"),
    };
    assert_eq!(out.status.code(), Some(0), "a blocked broker is not a failed run");
    assert!(num(&obj, "published") > 0.0);
    assert!(
        num(&obj, "unknown") > 0.0,
        "publishes were waiting for confirms at the alarm"
    );
    assert_eq!(
        num(&obj, "published"),
        num(&obj, "confirmed") + num(&obj, "unknown"),
        "every publish is confirmed or of unknown outcome"
    );
    assert_eq!(num(&obj, "consumed"), num(&obj, "confirmed"));
    assert_eq!(num(&obj, "lost"), 0.0);
    assert!(stderr.contains("outcome unknown"), "the give-up is said");
}
