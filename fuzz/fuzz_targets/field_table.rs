//! Arbitrary bytes as a standalone field table. Never panics; a table that parses
//! encodes to bytes that parse to a table that encodes to the same bytes.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use warren::wire::{encode_table, parse_table};

fuzz_target!(|data: &[u8]| {
    let src = Bytes::copy_from_slice(data);
    let Ok(table) = parse_table(&src) else { return };
    let mut first = BytesMut::new();
    encode_table(&table, &mut first);
    let first = first.freeze();
    let again = parse_table(&first).expect("an encoded table parses");
    let mut second = BytesMut::new();
    encode_table(&again, &mut second);
    assert_eq!(first, second.freeze(), "encoding is not stable");
    // NaN floats are the only values that are not equal to themselves.
    if !format!("{table:?}").contains("NaN") {
        assert_eq!(table, again);
    }
});
