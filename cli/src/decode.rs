//! `warren decode`: prints every frame of a raw AMQP 0-9-1 byte stream as one JSON
//! object per line.
//!
//! The input is what one side of a connection sent: it may start with the 8-byte
//! protocol header (a client stream does), which is detected and printed. Frames are
//! decoded with [`Frame::parse_bytes`], the parser the client itself uses. On
//! malformed or truncated input the frames decoded so far are printed, then one error
//! line on stderr, and the exit code is 1.

use std::fmt::Write as _;
use std::io::{self, Read, Write};

use bytes::Bytes;
use warren::wire::{ContentHeader, Frame, Method, WireError};

use crate::json;

/// Usage text of the subcommand.
pub const USAGE: &str = "\
usage: warren decode [--frame-max N] [--body] [FILE | -]

Prints each frame of a raw AMQP 0-9-1 byte stream (one direction of a connection,
with or without the leading 8-byte protocol header) as one JSON object per line.
Reads FILE, or standard input when FILE is absent or '-'.

options:
  --frame-max N   refuse frames larger than N bytes, as a peer that negotiated
                  frame_max N would (default 0: no limit)
  --body          include body bytes: a string when UTF-8, else {\"bytes\":\"<hex>\"}
  -h, --help      this text

exit status: 0 when every byte decoded, 1 on malformed or truncated input (the
frames before the fault are printed, the error goes to stderr), 2 on usage errors.
";

/// Parsed command-line options.
#[derive(Debug, Default)]
struct Options {
    frame_max: u32,
    body: bool,
    input: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut opts = Options::default();
    let mut it = args.iter();
    let mut only_positional = false;
    while let Some(arg) = it.next() {
        if only_positional || arg == "-" || !arg.starts_with('-') {
            if opts.input.replace(arg.clone()).is_some() {
                return Err("more than one input file given".into());
            }
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        match name {
            "--" => only_positional = true,
            "-h" | "--help" => return Ok(None),
            "--body" if inline.is_none() => opts.body = true,
            "--frame-max" => {
                let value = match inline {
                    Some(v) => v,
                    None => it.next().cloned().ok_or("--frame-max needs a value")?,
                };
                opts.frame_max = value
                    .parse()
                    .map_err(|_| format!("--frame-max: {value:?} is not a number from 0 to 4294967295"))?;
            }
            _ => return Err(format!("unknown option {arg:?}")),
        }
    }
    Ok(Some(opts))
}

/// Runs `warren decode` with the arguments after the subcommand name; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let opts = match parse_args(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(msg) => {
            eprintln!("warren decode: {msg}\n\n{USAGE}");
            return 2;
        }
    };
    let input = match read_input(opts.input.as_deref()) {
        Ok(bytes) => Bytes::from(bytes),
        Err(msg) => {
            eprintln!("warren decode: {msg}");
            return 1;
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = decode_stream(&input, &opts, &mut out);
    // Frames decoded before a fault are printed before the error line.
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(Ok(())), Ok(())) => 0,
        (Ok(Err(fault)), Ok(())) => {
            eprintln!("{fault}");
            1
        }
        // A closed pipe (`warren decode x | head`) is not worth a message.
        (Err(e), _) | (_, Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("warren decode: writing output: {e}");
            1
        }
    }
}

fn read_input(path: Option<&str>) -> Result<Vec<u8>, String> {
    match path {
        None | Some("-") => {
            let mut buf = Vec::new();
            io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| format!("reading stdin: {e}"))?;
            Ok(buf)
        }
        Some(p) => std::fs::read(p).map_err(|e| format!("reading {p}: {e}")),
    }
}

/// Why decoding stopped before the end of the input.
#[derive(Debug)]
enum Fault {
    /// The bytes at `offset` are not a valid frame.
    Malformed { offset: usize, error: WireError },
    /// The input ends inside the frame (or protocol header) that starts at `offset`.
    Truncated { offset: usize, need: usize, at_least: bool },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Malformed { offset, error } => {
                let code = error.reply_code();
                write!(f, "error at byte offset {offset}: {error} (reply code {}", code.0)?;
                if let Some(name) = code.name() {
                    write!(f, " {name}")?;
                }
                f.write_str(")")
            }
            Fault::Truncated { offset, need, at_least } => {
                let at_least = if *at_least { "at least " } else { "" };
                let s = if *need == 1 { "" } else { "s" };
                write!(
                    f,
                    "truncated frame at offset {offset} (need {at_least}{need} more byte{s})"
                )
            }
        }
    }
}

/// Frame header length: type, channel, payload size.
const FRAME_HEAD: usize = 7;

/// Decodes all of `input`, writing one JSON line per frame to `out`. The outer `Result`
/// is an output error, the inner one a fault in the input.
fn decode_stream(input: &Bytes, opts: &Options, out: &mut impl Write) -> io::Result<Result<(), Fault>> {
    let mut line = String::with_capacity(256);
    let mut offset = 0;
    if input.starts_with(b"AMQP") || (input.len() < 4 && b"AMQP".starts_with(input) && !input.is_empty()) {
        let Some(head) = input.get(..8) else {
            return Ok(Err(Fault::Truncated {
                offset: 0,
                need: 8 - input.len(),
                at_least: false,
            }));
        };
        let _ = write!(
            line,
            "{{\"offset\":0,\"type\":\"protocol-header\",\"version\":\"{}-{}-{}\"",
            head[5], head[6], head[7]
        );
        if head[4] != 0 {
            // AMQP 0-9-1 sends 0 here; older versions put a protocol class id.
            let _ = write!(line, ",\"protocol_id\":{}", head[4]);
        }
        line.push_str("}\n");
        out.write_all(line.as_bytes())?;
        offset = 8;
    }
    while offset < input.len() {
        let rest = input.slice(offset..);
        match Frame::parse_bytes(&rest, opts.frame_max) {
            Ok(Some((frame, len))) => {
                line.clear();
                frame_json(&mut line, offset, &frame, opts.body);
                line.push('\n');
                out.write_all(line.as_bytes())?;
                offset += len;
            }
            Ok(None) => return Ok(Err(truncated(offset, &rest))),
            Err(error) => {
                return Ok(Err(Fault::Malformed {
                    offset: error_offset(offset, &rest, &error),
                    error,
                }));
            }
        }
    }
    Ok(Ok(()))
}

/// How many more bytes the incomplete frame at the front of `rest` needs.
fn truncated(offset: usize, rest: &[u8]) -> Fault {
    match rest.get(3..FRAME_HEAD) {
        Some(size) => {
            let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
            let total = FRAME_HEAD + size + 1;
            Fault::Truncated {
                offset,
                need: total.saturating_sub(rest.len()),
                at_least: false,
            }
        }
        // The size is not there yet: the smallest frame (a heartbeat) is 8 bytes.
        None => Fault::Truncated {
            offset,
            need: FRAME_HEAD + 1 - rest.len(),
            at_least: true,
        },
    }
}

/// The byte the error points at: the frame-end octet for a bad frame end, the size
/// field for an oversized frame, else the start of the frame.
fn error_offset(offset: usize, rest: &[u8], error: &WireError) -> usize {
    match error {
        WireError::BadFrameEnd { .. } => match rest.get(3..FRAME_HEAD) {
            Some(s) => offset + FRAME_HEAD + u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize,
            None => offset,
        },
        WireError::FrameTooLarge { .. } => offset + 3,
        _ => offset,
    }
}

/// Appends the JSON object of one frame (without a newline).
fn frame_json(out: &mut String, offset: usize, frame: &Frame, body: bool) {
    let _ = write!(out, "{{\"offset\":{offset},");
    match frame {
        Frame::Method { channel, method } => method_json(out, *channel, method),
        Frame::Header { channel, header } => header_json(out, *channel, header),
        Frame::Body { channel, payload } => {
            let _ = write!(
                out,
                "\"type\":\"body\",\"channel\":{channel},\"size\":{}",
                payload.len()
            );
            if body {
                out.push_str(",\"body\":");
                json::text_or_bytes(out, payload);
            }
        }
        Frame::Heartbeat => out.push_str("\"type\":\"heartbeat\",\"channel\":0"),
    }
    out.push('}');
}

fn method_json(out: &mut String, channel: u16, method: &Method) {
    let id = method.id();
    let name = method.name();
    let (class, short) = name.split_once('.').unwrap_or((name, ""));
    let _ = write!(out, "\"type\":\"method\",\"channel\":{channel},\"class\":");
    json::string(out, class);
    out.push_str(",\"method\":");
    json::string(out, short);
    out.push_str(",\"name\":");
    json::string(out, name);
    let _ = write!(
        out,
        ",\"class_id\":{},\"method_id\":{},\"fields\":{{",
        id.class_id, id.method_id
    );
    let mut first = true;
    method.visit_fields(&mut |field, value| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        json::string(out, field);
        out.push(':');
        json::field_ref(out, value);
    });
    out.push('}');
}

fn header_json(out: &mut String, channel: u16, header: &ContentHeader) {
    let _ = write!(
        out,
        "\"type\":\"header\",\"channel\":{channel},\"class_id\":{},\"body_size\":{},\"properties\":{{",
        header.class_id, header.body_size
    );
    let mut first = true;
    header.properties.visit_fields(&mut |field, value| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        json::string(out, field);
        out.push(':');
        json::field_ref(out, value);
    });
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_options() {
        let o = parse_args(&args(&["--frame-max", "4096", "--body", "x.bin"]))
            .unwrap()
            .unwrap();
        assert_eq!((o.frame_max, o.body, o.input.as_deref()), (4096, true, Some("x.bin")));
        let o = parse_args(&args(&["--frame-max=131072", "-"])).unwrap().unwrap();
        assert_eq!((o.frame_max, o.input.as_deref()), (131072, Some("-")));
        assert!(parse_args(&args(&["--help"])).unwrap().is_none());
        assert!(parse_args(&args(&["--frame-max"])).is_err());
        assert!(parse_args(&args(&["--frame-max", "-1"])).is_err());
        assert!(parse_args(&args(&["--bogus"])).is_err());
        assert!(parse_args(&args(&["a", "b"])).is_err());
        let o = parse_args(&args(&["--", "--body"])).unwrap().unwrap();
        assert_eq!(o.input.as_deref(), Some("--body"));
    }

    #[test]
    fn truncation_needs() {
        let f = truncated(10, &[1, 0, 1]);
        assert!(matches!(
            f,
            Fault::Truncated {
                offset: 10,
                need: 5,
                at_least: true
            }
        ));
        let f = truncated(0, &[1, 0, 1, 0, 0, 0, 20, 0, 0]);
        assert!(matches!(
            f,
            Fault::Truncated {
                offset: 0,
                need: 19,
                at_least: false
            }
        ));
        assert_eq!(f.to_string(), "truncated frame at offset 0 (need 19 more bytes)");
    }
}
