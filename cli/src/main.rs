//! `warren`: command-line tools for the warren AMQP 0-9-1 client.
//!
//! `main` only dispatches on the subcommand; each subcommand lives in its own module
//! and returns the process exit code.

#![forbid(unsafe_code)]

mod decode;
mod json;
mod perf;

const USAGE: &str = "\
usage: warren <command> [options]

commands:
  decode    print the frames of a raw AMQP 0-9-1 byte stream as JSON lines
  perf      load test against a RabbitMQ broker, counting lost and duplicate messages
  help      this text (`warren help <command>` for a command's options)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("decode") => decode::run(&args[1..]),
        Some("perf") => perf::run(&args[1..]),
        Some("help" | "-h" | "--help") => match args.get(1).map(String::as_str) {
            Some("decode") => {
                print!("{}", decode::USAGE);
                0
            }
            Some("perf") => {
                println!("{}", perf::usage());
                0
            }
            _ => {
                print!("{USAGE}");
                0
            }
        },
        Some("-V" | "--version") => {
            println!("warren {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some(other) => {
            eprintln!("warren: unknown command {other:?}\n\n{USAGE}");
            2
        }
        None => {
            eprint!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
