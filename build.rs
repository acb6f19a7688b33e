//! Generates `$OUT_DIR/amqp0_9_1.rs` from `spec/amqp0-9-1.xml` with `warren-codegen`;
//! `src/wire/spec.rs` includes it. A bad spec fails the build with `file:line:col`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=spec");
    println!("cargo:rerun-if-changed=codegen/src");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("amqp0_9_1.rs");
    // Cargo runs build scripts in the package root, so the relative path is the one errors show.
    if let Err(e) = warren_codegen::generate_file("spec/amqp0-9-1.xml", &out) {
        panic!("{e}");
    }
}
