//! warren's code generator: AMQP 0-9-1 XML spec in, Rust source out.
//!
//! Three stages, like xcbgen and wayland-scanner:
//! 1. the parser (`parse`) reads the XML into the plain [`model`], resolving
//!    domain chains to primitives on the way (`resolve`);
//! 2. the validator (`validate`) refuses duplicate ids and names, dangling
//!    `<response>`s and anything that would make the generated code clash or
//!    mean something else than the spec says;
//! 3. the emitter (`emit`) writes one Rust file for `src/wire/spec.rs` to
//!    `include!`: constants, reply codes, a struct per method, the `Method` enum,
//!    the method table and the content-property structs.
//!
//! Every problem in the spec is an [`Error`] naming `file:line:col`, never a panic.
//! `build.rs` calls [`generate_file`]; tests use [`parse`] and [`generate`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod emit;
mod error;
pub mod model;
mod names;
mod parse;
mod resolve;
mod validate;

use std::path::Path;

pub use error::Error;
pub use model::Spec;

/// Parses and validates a spec; errors name the file `<input>`.
pub fn parse(xml: &str) -> Result<Spec, Error> {
    parse_named(xml, "<input>")
}

/// Parses and validates a spec read from `source`, the name used in errors and in
/// the generated file's header.
pub fn parse_named(xml: &str, source: &str) -> Result<Spec, Error> {
    let spec = parse::spec(xml, source)?;
    validate::check(&spec)?;
    Ok(spec)
}

/// The Rust source for a validated spec.
pub fn generate(spec: &Spec) -> String {
    let mut out = String::with_capacity(256 * 1024);
    // Formatting into a String cannot fail.
    emit::spec(&mut out, spec).expect("writing to a String");
    out
}

/// Reads the spec at `spec_path`, generates code and writes it to `out_path` (left
/// untouched when the content is the same). Errors name `spec_path` as given.
pub fn generate_file(spec_path: impl AsRef<Path>, out_path: impl AsRef<Path>) -> Result<(), Error> {
    let (spec_path, out_path) = (spec_path.as_ref(), out_path.as_ref());
    let source = spec_path.display().to_string();
    let xml = std::fs::read_to_string(spec_path).map_err(|e| Error::file(&source, format!("cannot read: {e}")))?;
    let code = generate(&parse_named(&xml, &source)?);
    if std::fs::read_to_string(out_path).is_ok_and(|old| old == code) {
        return Ok(());
    }
    let out_name = out_path.display().to_string();
    std::fs::write(out_path, code).map_err(|e| Error::file(&out_name, format!("cannot write: {e}")))
}
