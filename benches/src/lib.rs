//! A tiny timing harness for warren's `harness = false` benchmarks (no criterion, to keep
//! builds light).
//!
//! Each case runs once untimed (warm-up: caches, page faults, lazy allocations), then
//! `reps` timed repetitions over `n` messages. The report is the median and the minimum
//! of ns per message over the repetitions, as a table or, with `--json`, one JSON object
//! per line.
//!
//! Knobs (arguments override environment variables):
//! - `--n N` / `WARREN_BENCH_N`: messages per repetition (default given by the bench).
//! - `--reps R` / `WARREN_BENCH_REPS`: timed repetitions (default 7).
//! - `--no-warmup` / `WARREN_BENCH_WARMUP=0`: skip the untimed run (for callgrind).
//! - `--json` / `WARREN_BENCH_JSON=1`: JSON lines instead of a table.
//! - any other word: a filter; only matching cases run. `case/op` (with a slash) matches
//!   that case exactly, a word without a slash matches every `case/op` containing it.
//!
//! Arguments cargo passes to bench binaries (`--bench`) are ignored.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// Settings for one benchmark binary.
#[derive(Debug, Clone)]
pub struct Config {
    /// Messages per repetition.
    pub n: usize,
    /// Timed repetitions.
    pub reps: usize,
    /// Run each case once untimed first.
    pub warmup: bool,
    /// Print JSON lines instead of a table.
    pub json: bool,
    /// Substrings of `case/op` to run; empty runs everything.
    pub filters: Vec<String>,
}

impl Config {
    /// Reads the environment and the command line; `default_n` is the bench's default.
    pub fn from_env(default_n: usize) -> Config {
        let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<usize>().ok());
        let env_flag = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| !matches!(v.trim(), "" | "0" | "false" | "no"))
        };
        let mut cfg = Config {
            n: env_num("WARREN_BENCH_N").unwrap_or(default_n),
            reps: env_num("WARREN_BENCH_REPS").unwrap_or(7),
            warmup: env_flag("WARREN_BENCH_WARMUP").unwrap_or(true),
            json: env_flag("WARREN_BENCH_JSON").unwrap_or(false),
            filters: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut num = |what: &str| -> usize {
                match args.next().and_then(|v| v.parse().ok()) {
                    Some(v) => v,
                    None => usage(&format!("{what} needs a number")),
                }
            };
            match arg.as_str() {
                "--json" => cfg.json = true,
                "--n" => cfg.n = num("--n"),
                "--reps" => cfg.reps = num("--reps"),
                "--no-warmup" => cfg.warmup = false,
                "--bench" | "--nocapture" | "--quiet" | "-q" => {}
                "-h" | "--help" => usage(""),
                s if s.starts_with('-') => usage(&format!("unknown option {s}")),
                s => cfg.filters.push(s.to_string()),
            }
        }
        cfg.n = cfg.n.max(1);
        cfg.reps = cfg.reps.max(1);
        cfg
    }

    /// Whether the case `case/op` passes the filters.
    pub fn selected(&self, case: &str, op: &str) -> bool {
        let name = format!("{case}/{op}");
        self.filters.is_empty()
            || self.filters.iter().any(|f| {
                if f.contains('/') {
                    name == *f
                } else {
                    name.contains(f.as_str())
                }
            })
    }
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("error: {msg}");
    }
    eprintln!(
        "usage: <bench> [--n N] [--reps R] [--json] [--no-warmup] [FILTER...]\n\
         env: WARREN_BENCH_N, WARREN_BENCH_REPS, WARREN_BENCH_WARMUP=0, WARREN_BENCH_JSON=1"
    );
    std::process::exit(if msg.is_empty() { 0 } else { 2 });
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct Record {
    /// What is measured ("message", "deliver", ...).
    pub case: String,
    /// The operation ("decode", "encode").
    pub op: String,
    /// Messages per repetition.
    pub n: usize,
    /// Encoded bytes per message.
    pub bytes_per_msg: usize,
    /// ns per message of each repetition, in run order.
    pub ns_per_msg: Vec<f64>,
}

impl Record {
    /// Median ns per message (mean of the two middle values for an even count).
    pub fn median(&self) -> f64 {
        let mut v = self.ns_per_msg.clone();
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        }
    }

    /// Fastest repetition, ns per message.
    pub fn min(&self) -> f64 {
        self.ns_per_msg.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// Throughput at the median, MB/s (10^6 bytes).
    pub fn mbytes_per_s(&self) -> f64 {
        self.bytes_per_msg as f64 / self.median() * 1e3
    }
}

/// Runs cases and prints their results.
pub struct Harness {
    /// The settings in force.
    pub cfg: Config,
    bench: &'static str,
    records: Vec<Record>,
}

impl Harness {
    /// A harness for the bench binary `bench`, configured from the environment.
    pub fn new(bench: &'static str, default_n: usize) -> Harness {
        Harness {
            cfg: Config::from_env(default_n),
            bench,
            records: Vec::new(),
        }
    }

    /// Measures `case/op`. `rep(n)` does any untimed setup, then times the work on `n`
    /// messages with [`time`] and returns that duration. Skipped when filtered out.
    pub fn run(&mut self, case: &str, op: &str, bytes_per_msg: usize, mut rep: impl FnMut(usize) -> Duration) {
        if !self.cfg.selected(case, op) {
            return;
        }
        let n = self.cfg.n;
        if self.cfg.warmup {
            std::hint::black_box(rep(n));
        }
        let ns_per_msg = (0..self.cfg.reps)
            .map(|_| rep(n).as_secs_f64() * 1e9 / n as f64)
            .collect();
        let rec = Record {
            case: case.into(),
            op: op.into(),
            n,
            bytes_per_msg,
            ns_per_msg,
        };
        if self.cfg.json {
            println!("{}", self.json_line(&rec));
        }
        self.records.push(rec);
    }

    fn json_line(&self, r: &Record) -> String {
        let reps: Vec<String> = r.ns_per_msg.iter().map(|v| format!("{v:.2}")).collect();
        format!(
            "{{\"bench\":\"{}\",\"case\":\"{}\",\"op\":\"{}\",\"n\":{},\"reps\":{},\"bytes_per_msg\":{},\
             \"median_ns\":{:.2},\"min_ns\":{:.2},\"mbytes_per_s\":{:.1},\"ns_per_rep\":[{}]}}",
            self.bench,
            r.case,
            r.op,
            r.n,
            r.ns_per_msg.len(),
            r.bytes_per_msg,
            r.median(),
            r.min(),
            r.mbytes_per_s(),
            reps.join(",")
        )
    }

    /// Prints the table (unless `--json`) and returns the records.
    pub fn finish(self) -> Vec<Record> {
        if !self.cfg.json {
            println!(
                "{}: n = {} messages per rep, {} reps; ns per message (per frame for single-frame cases)",
                self.bench, self.cfg.n, self.cfg.reps
            );
            println!(
                "{:<12} {:<14} {:>10} {:>10} {:>10} {:>10}",
                "case", "op", "median", "min", "bytes", "MB/s"
            );
            for r in &self.records {
                println!(
                    "{:<12} {:<14} {:>10.1} {:>10.1} {:>10} {:>10.0}",
                    r.case,
                    r.op,
                    r.median(),
                    r.min(),
                    r.bytes_per_msg,
                    r.mbytes_per_s()
                );
            }
        }
        self.records
    }
}

/// Times `work`, returning how long it took; its result goes through `black_box`.
#[inline]
pub fn time<T>(work: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    std::hint::black_box(work());
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_min() {
        let r = Record {
            case: "c".into(),
            op: "o".into(),
            n: 1,
            bytes_per_msg: 100,
            ns_per_msg: vec![5.0, 1.0, 3.0],
        };
        assert_eq!((r.median(), r.min()), (3.0, 1.0));
        let r = Record {
            ns_per_msg: vec![4.0, 1.0, 3.0, 2.0],
            ..r
        };
        assert_eq!(r.median(), 2.5);
    }
}
