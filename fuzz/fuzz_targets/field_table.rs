//! Arbitrary bytes as a standalone field table. Never panics; a table that parses encodes
//! back to the same bytes (it is kept as checked, built on first read), and its entries,
//! rebuilt all the way down as tables made in code, encode to bytes that parse to the
//! same entries and encode the same way again.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use warren::wire::{FieldArray, FieldTable, FieldValue, encode_table, parse_table};

fn encode(table: &FieldTable) -> Bytes {
    let mut buf = BytesMut::new();
    encode_table(table, &mut buf);
    buf.freeze()
}

/// The same entries as a table built in code, nested tables (in arrays too) included,
/// so encoding it writes every entry instead of copying wire bytes.
fn rebuilt(table: &FieldTable) -> FieldTable {
    table.iter().map(|(k, v)| (k.clone(), rebuilt_value(v))).collect()
}

fn rebuilt_value(value: &FieldValue) -> FieldValue {
    match value {
        FieldValue::Table(t) => FieldValue::Table(rebuilt(t)),
        FieldValue::Array(a) => FieldValue::Array(FieldArray(a.0.iter().map(rebuilt_value).collect())),
        other => other.clone(),
    }
}

fuzz_target!(|data: &[u8]| {
    let src = Bytes::copy_from_slice(data);
    let Ok(table) = parse_table(&src) else { return };
    assert_eq!(encode(&table), src, "an unchanged table encodes to other bytes");
    // Building the entries, all the way down, must not fail on what parsing accepted.
    let built = rebuilt(&table);
    assert_eq!(built.len(), table.len());
    let first = encode(&built);
    let again = parse_table(&first).expect("an encoded table parses");
    assert_eq!(encode(&rebuilt(&again)), first, "encoding is not stable");
    // NaN floats are the only values that are not equal to themselves.
    if !format!("{table:?}").contains("NaN") {
        assert_eq!(table, built);
        assert_eq!(built, again);
    }
});
