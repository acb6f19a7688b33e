//! Arbitrary bytes as a standalone field table. Never panics; a table that parses encodes
//! back to the same bytes, and its entries, built into a new table, encode to bytes that
//! parse to the same entries and encode the same way again.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use warren::wire::{FieldTable, encode_table, parse_table};

fn encode(table: &FieldTable) -> Bytes {
    let mut buf = BytesMut::new();
    encode_table(table, &mut buf);
    buf.freeze()
}

fuzz_target!(|data: &[u8]| {
    let src = Bytes::copy_from_slice(data);
    let Ok(table) = parse_table(&src) else { return };
    assert_eq!(encode(&table), src, "an unchanged table encodes to other bytes");
    // Building the entries must not fail on what parsing accepted.
    let rebuilt: FieldTable = table.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(rebuilt.len(), table.len());
    let first = encode(&rebuilt);
    let again = parse_table(&first).expect("an encoded table parses");
    assert_eq!(encode(&again), first, "encoding is not stable");
    // NaN floats are the only values that are not equal to themselves.
    if !format!("{table:?}").contains("NaN") {
        assert_eq!(table, again);
        assert_eq!(table, rebuilt);
    }
});
