//! `warren perf` against the real broker (scripts/broker.sh starts one; `AMQP_URL`
//! points elsewhere). These tests fail, never skip, when no broker answers.

use std::collections::BTreeMap;
use std::process::{Command, Output};

fn perf(args: &[&str]) -> Output {
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
fn perf_json(args: &[&str]) -> BTreeMap<String, Json> {
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

fn num(obj: &BTreeMap<String, Json>, key: &str) -> f64 {
    match obj.get(key) {
        Some(Json::Number(n)) => *n,
        other => panic!("{key}: expected a number, found {other:?}"),
    }
}

fn check_clean(obj: &BTreeMap<String, Json>, count: f64) {
    assert_eq!(num(obj, "published"), count);
    assert_eq!(num(obj, "consumed"), num(obj, "published"), "consumed == published");
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
    let (p50, p95, p99) = (
        num(obj, "latency_p50_us"),
        num(obj, "latency_p95_us"),
        num(obj, "latency_p99_us"),
    );
    assert!(
        p50 <= p95 && p95 <= p99 && p99 <= num(obj, "latency_max_us"),
        "ordered percentiles"
    );
    assert!(matches!(obj.get("cpu_seconds"), Some(Json::Number(c)) if *c >= 0.0));
    let (max, end) = (num(obj, "rss_max_mib"), num(obj, "rss_end_mib"));
    assert!(end > 0.0 && max >= end, "rss max {max} MiB, end {end} MiB");
    for key in ["rss_start_mib", "rss_growth_after_warmup_mib"] {
        assert!(obj.contains_key(key), "{key} present (null for runs under 1 s)");
    }
}

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
    assert_eq!(num(&obj, "unconfirmed"), 0.0);
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

// ---------------------------------------------------------------------------------------
// A small strict JSON parser, enough to check that the output is valid JSON.

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    fn parse(s: &str) -> Result<Json, String> {
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

#[test]
fn json_parser_self_check() {
    assert!(Json::parse(r#"{"a":1,"b":[true,null,"x\"y"],"c":-1.5e3}"#).is_ok());
    assert!(Json::parse(r#"{"a":1,}"#).is_err());
    assert!(Json::parse(r#"{"a":1}{"#).is_err());
    assert!(Json::parse(r#"{"a":01}"#).is_err());
}
