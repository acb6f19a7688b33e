//! The field-table codec against two independent Python codecs, with no broker between:
//! pika's (`pika.data`) and pamqp's (`pamqp.encode`/`pamqp.decode`), both installed by
//! scripts/test-deps.sh. Each side encodes, the other decodes and checks every value.
//!
//! Decimals (`D`) are the point: the scale is an unsigned octet and the value a *signed*
//! 32-bit integer in both libraries (and in the Java, Go and .NET clients), so -0.35935
//! is scale 5, value -35935. A last test checks that a table built from plain Rust
//! values (`field_table!`) carries the tags another client expects.

#[path = "common/python.rs"]
mod python;

use bytes::{Bytes, BytesMut};
use python::python;
use warren::wire::{Decimal, FieldTable, FieldValue, ShortStr, encode_table, parse_table};

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Bytes {
    assert!(s.len() % 2 == 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("bad hex {s}: {e}")))
        .collect::<Vec<u8>>()
        .into()
}

/// The decimals both directions check, by key: (python literal, scale, value).
const DECIMALS: &[(&str, &str, u8, i32)] = &[
    ("neg", "-0.35935", 5, -35_935),
    ("pos", "123.45", 2, 12_345),
    ("neg_int", "-7", 0, -7),
    ("min", "-2147483.648", 3, i32::MIN),
    ("max", "2147483647", 0, i32::MAX),
    ("neg_one", "-0.01", 2, -1),
    ("tiny", "-1E-255", 255, -1),
];

fn python_dict() -> String {
    let entries: Vec<String> = DECIMALS
        .iter()
        .map(|(k, lit, _, _)| format!("{k:?}: decimal.Decimal({lit:?})"))
        .collect();
    format!("{{{}}}", entries.join(", "))
}

#[test]
fn warren_decodes_decimals_pika_and_pamqp_encoded() {
    let script = format!(
        r#"
import decimal, pika.data, pamqp.encode
table = {dict}
pieces = []
pika.data.encode_table(pieces, table)
print("pika", b"".join(pieces).hex())
print("pamqp", pamqp.encode.field_table(table).hex())
"#,
        dict = python_dict()
    );
    let out = python(&script, &[]);
    let mut seen = 0;
    let mut printed = Vec::new();
    for line in out.lines() {
        let (who, hex) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        let table = parse_table(&from_hex(hex)).unwrap_or_else(|e| panic!("{who}'s table: {e}"));
        assert_eq!(table.len(), DECIMALS.len(), "{who}: {table:?}");
        for &(key, lit, scale, value) in DECIMALS {
            let want = FieldValue::Decimal(Decimal::new(scale, value));
            assert_eq!(table.get(key), Some(&want), "{who} encoded {lit}");
            if let Some(FieldValue::Decimal(d)) = table.get(key) {
                printed.push(format!("({:?}, {lit:?})", d.to_string()));
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 2, "one table from each library: {out}");
    // Display is exact: each printed text is the same number as the Python literal.
    let script = format!(
        "import decimal\nfor text, lit in [{}]:\n    assert decimal.Decimal(text) == decimal.Decimal(lit), (text, lit)\nprint('exact')",
        printed.join(", ")
    );
    assert_eq!(python(&script, &[]).trim(), "exact");
}

#[test]
fn pika_and_pamqp_decode_decimals_warren_encoded() {
    let mut table = FieldTable::new();
    for &(key, _, scale, value) in DECIMALS {
        table.insert(
            ShortStr::try_from(key).unwrap(),
            FieldValue::Decimal(Decimal::new(scale, value)),
        );
    }
    let mut buf = BytesMut::new();
    encode_table(&table, &mut buf);
    let script = format!(
        r#"
import sys, decimal, pika.data, pamqp.decode
want = {dict}
raw = bytes.fromhex(sys.argv[1])
by_pika, end = pika.data.decode_table(raw, 0)
assert end == len(raw), ("pika stopped at", end, len(raw))
used, by_pamqp = pamqp.decode.field_table(raw)
assert used == len(raw), ("pamqp used", used, len(raw))
problems = []
for who, got in (("pika", by_pika), ("pamqp", by_pamqp)):
    if set(got) != set(want):
        problems.append(f"{{who}}: keys {{sorted(got)}} != {{sorted(want)}}")
    for k, v in want.items():
        if not isinstance(got.get(k), decimal.Decimal) or got.get(k) != v:
            problems.append(f"{{who}}: {{k}} got {{got.get(k)!r}}, want {{v!r}}")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("all equal")
"#,
        dict = python_dict()
    );
    assert_eq!(python(&script, &[&to_hex(&buf)]).trim(), "all equal");
}

/// A table built from plain Rust values (`field_table!`, `From`) is what pamqp, which
/// reads every tag as RabbitMQ does, decodes to the intended Python values and types.
#[test]
fn pamqp_reads_a_table_built_from_plain_values() {
    use std::time::{Duration, UNIX_EPOCH};
    use warren::{field_array, field_table};

    let table = field_table! {
        "bool" => true,
        "i8" => -8i8,
        "u8" => 200u8,
        "i16" => -300i16,
        "u16" => 60_000u16,
        "i32" => -2_000_000_000,
        "u32" => 4_000_000_000u32,
        "i64" => -9_000_000_000_000_000_000i64,
        "f32" => 1.5f32,
        "f64" => -2.25e100,
        "dec" => Decimal::new(5, -35_935),
        "text" => String::from("héllo"),
        "bytes" => b"\x00\x01\xff",
        "when" => UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        "none" => None::<&str>,
        "list" => field_array![1, "two", field_array![false], field_table! { "k" => "v" }],
        "nested" => field_table! { "n" => 2u16 },
    };
    let mut buf = BytesMut::new();
    encode_table(&table, &mut buf);
    let script = r#"
import sys, datetime, decimal, pamqp.decode
want = {
    "bool": True, "i8": -8, "u8": 200, "i16": -300, "u16": 60000, "i32": -2000000000,
    "u32": 4000000000, "i64": -9000000000000000000, "f32": 1.5, "f64": -2.25e100,
    "dec": decimal.Decimal("-0.35935"), "text": "héllo", "bytes": bytearray(b"\x00\x01\xff"),
    "when": datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc),
    "none": None, "list": [1, "two", [False], {"k": "v"}], "nested": {"n": 2},
}
raw = bytes.fromhex(sys.argv[1])
used, got = pamqp.decode.field_table(raw)
assert used == len(raw), ("pamqp used", used, len(raw))
problems = []
if list(got) != list(want):
    problems.append(f"keys {list(got)} != {list(want)}")
for k, v in want.items():
    g = got.get(k, "<missing>")
    if g != v or type(g) is not type(v):
        problems.append(f"{k}: got {g!r} ({type(g).__name__}), want {v!r} ({type(v).__name__})")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("all equal")
"#;
    assert_eq!(python(script, &[&to_hex(&buf)]).trim(), "all equal");
}
