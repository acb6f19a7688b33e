//! Helpers shared by the `warren perf` tests: run the binary, read its JSON.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::process::{Command, Output};

pub fn perf(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("perf")
        .args(args)
        .output()
        .expect("run the warren binary");
    eprintln!(
        "--- stderr of warren perf {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `warren perf ARGS --json --quiet`, asserts a clean exit and returns the object.
pub fn perf_json(args: &[&str]) -> BTreeMap<String, Json> {
    let mut all = args.to_vec();
    all.extend(["--json", "--quiet"]);
    let out = perf(&all);
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert_eq!(
        out.status.code(),
        Some(0),
        "warren perf failed (is RabbitMQ running? `scripts/broker.sh` starts it; AMQP_URL selects another)\nstdout: {stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must be exactly one JSON object: {stdout:?}");
    match Json::parse(lines[0]) {
        Ok(Json::Object(map)) => map,
        other => panic!("not a JSON object: {other:?} in {stdout:?}"),
    }
}

pub fn num(obj: &BTreeMap<String, Json>, key: &str) -> f64 {
    match obj.get(key) {
        Some(Json::Number(n)) => *n,
        other => panic!("{key}: expected a number, found {other:?}"),
    }
}

/// A run that lost nothing: `count` published, each consumed once from every queue that
/// should have it (`copies`), percentiles in order.
pub fn check_clean(obj: &BTreeMap<String, Json>, count: f64) {
    assert_eq!(num(obj, "published"), count);
    assert_eq!(
        num(obj, "consumed"),
        num(obj, "published") * num(obj, "copies") - num(obj, "nack_dropped"),
        "consumed == published x copies (less what was nacked without requeue)"
    );
    assert_eq!(num(obj, "lost"), 0.0);
    assert_eq!(num(obj, "duplicates"), 0.0);
    assert_eq!(num(obj, "corrupt"), 0.0);
    assert_eq!(num(obj, "nacked"), 0.0);
    assert_eq!(num(obj, "returned"), 0.0);
    assert_eq!(obj.get("ok"), Some(&Json::Bool(true)));
    assert_eq!(obj.get("error"), Some(&Json::Null));
    for key in ["publish_rate", "consume_rate", "elapsed_seconds"] {
        assert!(num(obj, key) > 0.0, "{key} > 0");
    }
    for prefix in ["latency", "confirm_latency"] {
        let values: Vec<f64> = ["p50", "p75", "p95", "p99", "p999", "max"]
            .iter()
            .map(|p| num(obj, &format!("{prefix}_{p}_us")))
            .collect();
        assert!(
            values.windows(2).all(|w| w[0] <= w[1]),
            "{prefix}: ordered percentiles {values:?}"
        );
    }
    assert!(num(obj, "latency_max_us") > 0.0, "publish -> consume latency measured");
    assert!(matches!(obj.get("cpu_seconds"), Some(Json::Number(c)) if *c >= 0.0));
    let (max, end) = (num(obj, "rss_max_mib"), num(obj, "rss_end_mib"));
    assert!(end > 0.0 && max >= end, "rss max {max} MiB, end {end} MiB");
    for key in ["rss_start_mib", "rss_growth_after_warmup_mib"] {
        assert!(obj.contains_key(key), "{key} present (null for runs under 1 s)");
    }
}

/// A string field of the JSON object.
pub fn text<'a>(obj: &'a BTreeMap<String, Json>, key: &str) -> &'a str {
    match obj.get(key) {
        Some(Json::String(s)) => s,
        other => panic!("{key}: expected a string, found {other:?}"),
    }
}

/// Runs `warren perf ARGS --json --quiet` expecting exit `code`; returns the object and stderr.
pub fn perf_json_exit(args: &[&str], code: i32) -> (BTreeMap<String, Json>, String) {
    let mut all = args.to_vec();
    all.extend(["--json", "--quiet"]);
    let out = perf(&all);
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert_eq!(out.status.code(), Some(code), "stdout: {stdout}");
    match Json::parse(stdout.trim()) {
        Ok(Json::Object(map)) => (map, String::from_utf8_lossy(&out.stderr).into_owned()),
        other => panic!("not a JSON object: {other:?} in {stdout:?}"),
    }
}

/// Runs `warren perf ARGS` expecting a usage error (exit 2); returns stderr.
pub fn usage_error(args: &[&str]) -> String {
    let out = perf(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} should be refused; stderr: {stderr}"
    );
    stderr
}

// ---------------------------------------------------------------------------------------
// A small strict JSON parser, enough to check that the output is valid JSON.

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    pub fn parse(s: &str) -> Result<Json, String> {
        let mut p = Parser { s: s.as_bytes(), i: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing characters at {}", p.i));
        }
        Ok(v)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && b" \t\r\n".contains(&self.s[self.i]) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut map = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Object(map));
                }
                loop {
                    self.ws();
                    let Json::String(k) = self.string()? else {
                        unreachable!()
                    };
                    self.eat(b':')?;
                    let v = self.value()?;
                    if map.insert(k.clone(), v).is_some() {
                        return Err(format!("duplicate key {k}"));
                    }
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Object(map));
                        }
                        _ => return Err(format!("expected , or }} at {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(format!("expected , or ] at {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while self.i < self.s.len() && b"+-.eE0123456789".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
                let leading_zero = digits.len() > 1 && digits[0] == b'0' && digits[1].is_ascii_digit();
                let ok_shape = !leading_zero && digits.first().is_some_and(u8::is_ascii_digit) && !text.ends_with('.');
                match text.parse::<f64>() {
                    Ok(n) if ok_shape && n.is_finite() => Ok(Json::Number(n)),
                    _ => Err(format!("bad number {text:?}")),
                }
            }
            _ => Err(format!("unexpected input at {}", self.i)),
        }
    }
    fn word(&mut self, w: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(format!("bad literal at {}", self.i))
        }
    }
    fn string(&mut self) -> Result<Json, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at {}", self.i));
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match c {
                b'"' => return Ok(Json::String(out)),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err("bad escape".into());
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e as char),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            let code = u32::from_str_radix(std::str::from_utf8(hex).unwrap(), 16)
                                .map_err(|_| "bad \\u escape".to_string())?;
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            self.i += 4;
                        }
                        _ => return Err(format!("bad escape \\{}", e as char)),
                    }
                }
                0..0x20 => return Err("control character in string".into()),
                _ => {
                    // Copy the whole UTF-8 sequence.
                    let start = self.i - 1;
                    let len = match c {
                        0xF0.. => 4,
                        0xE0.. => 3,
                        0xC0.. => 2,
                        _ => 1,
                    };
                    let chunk = self.s.get(start..start + len).ok_or("truncated UTF-8")?;
                    out.push_str(std::str::from_utf8(chunk).map_err(|_| "bad UTF-8".to_string())?);
                    self.i = start + len;
                }
            }
        }
    }
}

/// The broker the tests use: `AMQP_URL`, or the local default node.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Declares `queue` on the broker, runs `f` with a channel of that connection (on a
/// runtime of its own), then deletes the queue and closes the connection.
pub fn with_declared_queue(queue: &str, f: impl AsyncFnOnce(&warren::client::Channel)) {
    use warren::client::{Connection, QueueDeclareOptions, QueueDeleteOptions};
    use warren::wire::FieldTable;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = Connection::connect(&amqp_url())
            .await
            .expect("broker (scripts/broker.sh start)");
        let ch = conn.open_channel().await.unwrap();
        ch.queue_declare(queue, QueueDeclareOptions::durable(), FieldTable::new())
            .await
            .unwrap();
        f(&ch).await;
        ch.queue_delete(queue, QueueDeleteOptions::default()).await.unwrap();
        let _ = conn.close().await;
    });
}
