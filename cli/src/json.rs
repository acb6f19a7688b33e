//! Hand-written JSON output: string escaping and the value shapes `warren decode` prints.
//!
//! No serde: the tool writes a handful of shapes, and owning the escaping keeps the
//! output exact (field order kept, integers printed in full, no float rounding).

use std::fmt::Write as _;

use warren::wire::{FieldArray, FieldRef, FieldTable, FieldValue};

/// Appends `s` as a JSON string literal, quotes included.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `bytes` as lowercase hex digits (no quotes).
pub fn hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
}

/// Appends bytes as a string when they are UTF-8, else as `{"bytes":"<hex>"}`.
pub fn text_or_bytes(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => string(out, s),
        Err(_) => tagged_bytes(out, bytes),
    }
}

/// Appends `{"bytes":"<hex>"}`.
pub fn tagged_bytes(out: &mut String, bytes: &[u8]) {
    out.push_str("{\"bytes\":\"");
    hex(out, bytes);
    out.push_str("\"}");
}

/// Appends a float: a JSON number when finite, else `"NaN"`, `"Infinity"` or `"-Infinity"`.
pub fn float(out: &mut String, v: f64, shortest: impl std::fmt::Debug) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
    } else {
        // Debug prints the shortest text that reads back to the same value, and it is
        // valid JSON for finite values ("1.5", "3.0", "1e300", "-2.5e-8").
        let _ = write!(out, "{shortest:?}");
    }
}

/// Appends a decimal as `{"decimal":"<digits>"}`, exact: `value / 10^scale` with
/// `scale` digits after the point (scale 2, value 5 is "0.05"; scale 5, value -35935
/// is "-0.35935").
pub fn decimal(out: &mut String, scale: u8, value: i32) {
    let _ = write!(out, "{{\"decimal\":\"{}\"}}", warren::wire::Decimal::new(scale, value));
}

/// Appends a field table as a JSON object in wire order (repeated keys are kept).
pub fn table(out: &mut String, t: &FieldTable) {
    out.push('{');
    for (i, (key, value)) in t.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, key.as_str());
        out.push(':');
        field_value(out, value);
    }
    out.push('}');
}

fn array(out: &mut String, a: &FieldArray) {
    out.push('[');
    for (i, value) in a.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field_value(out, value);
    }
    out.push(']');
}

/// Appends one field-table value with its type kept:
/// integers and booleans as JSON, `S` as a string (or `{"bytes":..}` when not UTF-8),
/// `x` as `{"bytes":..}`, `T` as `{"timestamp":N}`, `D` as `{"decimal":".."}`, `V` as null.
pub fn field_value(out: &mut String, v: &FieldValue) {
    match v {
        FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        FieldValue::I8(n) => push_num(out, n),
        FieldValue::U8(n) => push_num(out, n),
        FieldValue::I16(n) => push_num(out, n),
        FieldValue::U16(n) => push_num(out, n),
        FieldValue::I32(n) => push_num(out, n),
        FieldValue::U32(n) => push_num(out, n),
        FieldValue::I64(n) => push_num(out, n),
        FieldValue::F32(f) => float(out, f64::from(*f), *f),
        FieldValue::F64(f) => float(out, *f, *f),
        FieldValue::Decimal(d) => decimal(out, d.scale, d.value),
        FieldValue::LongStr(s) => text_or_bytes(out, s),
        FieldValue::Bytes(b) => tagged_bytes(out, b),
        FieldValue::Array(a) => array(out, a),
        FieldValue::Timestamp(t) => {
            let _ = write!(out, "{{\"timestamp\":{t}}}");
        }
        FieldValue::Table(t) => table(out, t),
        FieldValue::Void => out.push_str("null"),
    }
}

/// Appends a method or property field.
pub fn field_ref(out: &mut String, v: FieldRef<'_>) {
    match v {
        FieldRef::Bit(b) => out.push_str(if b { "true" } else { "false" }),
        FieldRef::Octet(n) => push_num(out, &n),
        FieldRef::Short(n) => push_num(out, &n),
        FieldRef::Long(n) => push_num(out, &n),
        FieldRef::LongLong(n) | FieldRef::Timestamp(n) => push_num(out, &n),
        FieldRef::ShortStr(s) => string(out, s.as_str()),
        FieldRef::LongStr(b) => text_or_bytes(out, b),
        FieldRef::Table(t) => table(out, t),
    }
}

fn push_num(out: &mut String, n: &impl std::fmt::Display) {
    let _ = write!(out, "{n}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        let mut out = String::new();
        string(&mut out, x);
        out
    }

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        assert_eq!(s("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(s("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(s("\u{0}\u{1f}\u{7f}"), r#""\u0000\u001f\u007f""#);
        assert_eq!(s("héllo ✓ \u{2028}"), "\"héllo ✓ \u{2028}\"");
    }

    #[test]
    fn decimals_are_exact() {
        let d = |scale, value| {
            let mut out = String::new();
            decimal(&mut out, scale, value);
            out
        };
        assert_eq!(d(0, 42), r#"{"decimal":"42"}"#);
        assert_eq!(d(2, 12345), r#"{"decimal":"123.45"}"#);
        assert_eq!(d(3, 5), r#"{"decimal":"0.005"}"#);
        assert_eq!(d(2, 100), r#"{"decimal":"1.00"}"#);
        assert_eq!(d(5, -35935), r#"{"decimal":"-0.35935"}"#);
        assert_eq!(d(0, i32::MIN), r#"{"decimal":"-2147483648"}"#);
        assert_eq!(d(10, i32::MIN), r#"{"decimal":"-0.2147483648"}"#);
    }

    #[test]
    fn floats() {
        let f = |v: f64| {
            let mut out = String::new();
            float(&mut out, v, v);
            out
        };
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(3.0), "3.0");
        assert_eq!(f(f64::NAN), "\"NaN\"");
        assert_eq!(f(f64::NEG_INFINITY), "\"-Infinity\"");
        let mut out = String::new();
        float(&mut out, f64::from(0.1f32), 0.1f32);
        assert_eq!(out, "0.1");
    }
}
