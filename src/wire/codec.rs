//! nom parsers and encoders for the primitive types; the generated method code calls these.
//!
//! Parsers run over an exact frame payload (as `nom::number::complete` would): running out of
//! input is [`WireError::Truncated`], never "need more". Strings, long strings and byte
//! arrays are zero-copy slices of `src`, the `Bytes` the input slice belongs to.

use bytes::{BufMut, Bytes, BytesMut};
use nom::Parser;

use super::{Decimal, FieldArray, FieldTable, FieldValue, MethodId, ShortStr, TableRef, WireError};

/// A parse result over a payload slice.
pub type PResult<'a, T> = nom::IResult<&'a [u8], T, WireError>;

/// How deeply field tables and arrays may nest before the input is refused.
pub const MAX_NESTING: usize = 32;

#[inline]
fn fail<T>(e: WireError) -> Result<T, nom::Err<WireError>> {
    Err(nom::Err::Failure(e))
}

/// Big-endian numbers, as `nom::number::complete` reads them (running out of input is
/// an `Error` of [`WireError::Truncated`]), with one bounds check and no combinator
/// plumbing: they are most of what a frame header and a method decode.
macro_rules! be_numbers {
    ($($name:ident: $ty:ty),*) => {$(
        #[inline]
        fn $name(i: &[u8]) -> PResult<'_, $ty> {
            match i.split_first_chunk() {
                Some((head, rest)) => Ok((rest, <$ty>::from_be_bytes(*head))),
                None => Err(nom::Err::Error(WireError::Truncated)),
            }
        }
    )*};
}

be_numbers!(
    be_u8: u8, be_u16: u16, be_u32: u32, be_u64: u64,
    be_i8: i8, be_i16: i16, be_i32: i32, be_i64: i64,
    be_f32: f32, be_f64: f64
);

/// Reads an octet.
#[inline]
pub fn octet(i: &[u8]) -> PResult<'_, u8> {
    be_u8(i)
}

/// Reads a 16-bit integer.
#[inline]
pub fn short(i: &[u8]) -> PResult<'_, u16> {
    be_u16(i)
}

/// Reads a 32-bit integer.
#[inline]
pub fn long(i: &[u8]) -> PResult<'_, u32> {
    be_u32(i)
}

/// Reads a 64-bit integer.
#[inline]
pub fn longlong(i: &[u8]) -> PResult<'_, u64> {
    be_u64(i)
}

/// Reads an octet of packed bits, refusing bits at positions `used` and above.
#[inline]
pub fn bits(i: &[u8], used: u8) -> PResult<'_, u8> {
    let (i, b) = be_u8(i)?;
    let mask: u8 = if used >= 8 { 0xff } else { (1u8 << used) - 1 };
    if b & !mask != 0 {
        return fail(WireError::BadBits { bits: b });
    }
    Ok((i, b))
}

/// The `len` bytes at the front of `i`, and the rest (as `take`, without the
/// combinator plumbing: strings are most of what a delivery decodes).
#[inline]
fn split(i: &[u8], len: usize) -> PResult<'_, &[u8]> {
    if i.len() < len {
        return Err(nom::Err::Error(WireError::Truncated));
    }
    let (s, rest) = i.split_at(len);
    Ok((rest, s))
}

#[inline]
fn shortstr_slice(i: &[u8]) -> PResult<'_, &[u8]> {
    match i.split_first() {
        Some((&len, rest)) => split(rest, usize::from(len)),
        None => Err(nom::Err::Error(WireError::Truncated)),
    }
}

#[inline]
fn longstr_slice(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, len) = be_u32(i)?;
    split(i, len as usize)
}

/// A zero-copy `Bytes` for `part` when it lies inside `src` (always, from this crate's
/// parsers); a copy otherwise, so a caller passing unrelated slices cannot cause a panic.
#[inline]
pub(crate) fn share(src: &Bytes, part: &[u8]) -> Bytes {
    let (start, at) = (src.as_ptr() as usize, part.as_ptr() as usize);
    if part.is_empty() {
        Bytes::new()
    } else if at >= start && at + part.len() <= start + src.len() {
        // Bounds checked here: a plain slice, not `slice_ref`, which checks them again.
        let from = at - start;
        src.slice(from..from + part.len())
    } else {
        Bytes::copy_from_slice(part)
    }
}

/// Refuses text that is not UTF-8. Nearly every short string is ASCII, which is
/// checked a word at a time.
#[inline]
fn check_text(s: &[u8]) -> Result<(), nom::Err<WireError>> {
    if !s.is_ascii() && std::str::from_utf8(s).is_err() {
        return fail(WireError::InvalidUtf8);
    }
    Ok(())
}

/// Reads a short string (UTF-8, at most 255 bytes).
#[inline]
pub fn shortstr<'a>(src: &Bytes, i: &'a [u8]) -> PResult<'a, ShortStr> {
    let (i, s) = shortstr_slice(i)?;
    check_text(s)?;
    Ok((i, ShortStr::from_checked(share(src, s))))
}

/// Skips a short string, checking it as [`shortstr`] would.
#[inline]
pub fn check_shortstr(i: &[u8]) -> PResult<'_, ()> {
    let (i, s) = shortstr_slice(i)?;
    check_text(s)?;
    Ok((i, ()))
}

/// Skips a field table, checking it as [`table`] would.
#[inline]
pub fn check_table(i: &[u8]) -> PResult<'_, ()> {
    checked_table(i, 0).map(|(i, _)| (i, ()))
}

/// Skips a short string without checking it (reserved fields).
#[inline]
pub fn skip_shortstr(i: &[u8]) -> PResult<'_, ()> {
    shortstr_slice(i).map(|(i, _)| (i, ()))
}

/// Reads a long string as bytes.
#[inline]
pub fn longstr<'a>(src: &Bytes, i: &'a [u8]) -> PResult<'a, Bytes> {
    let (i, s) = longstr_slice(i)?;
    Ok((i, share(src, s)))
}

/// Skips a long string (reserved fields).
#[inline]
pub fn skip_longstr(i: &[u8]) -> PResult<'_, ()> {
    longstr_slice(i).map(|(i, _)| (i, ()))
}

/// Reads a field table: checked whole now, so a bad table fails here, and built when
/// first read.
#[inline]
pub fn table<'a>(src: &Bytes, i: &'a [u8]) -> PResult<'a, FieldTable> {
    let (rest, body) = checked_table(i, 0)?;
    Ok((rest, FieldTable::from_validated(share(src, body))))
}

/// Reads a short string in place, checked as [`shortstr`] checks it.
#[inline]
pub fn shortstr_ref(i: &[u8]) -> PResult<'_, &str> {
    let (i, s) = shortstr_slice(i)?;
    match std::str::from_utf8(s) {
        Ok(s) => Ok((i, s)),
        Err(_) => fail(WireError::InvalidUtf8),
    }
}

/// Reads a long string in place.
#[inline]
pub fn longstr_ref(i: &[u8]) -> PResult<'_, &[u8]> {
    longstr_slice(i)
}

/// Reads a field table in place, checked whole as [`table`] checks it.
#[inline]
pub fn table_ref(i: &[u8]) -> PResult<'_, TableRef<'_>> {
    let (rest, body) = checked_table(i, 0)?;
    Ok((rest, TableRef::from_checked(body)))
}

/// An owned copy of a short string that was checked in place.
pub(crate) fn owned_shortstr(s: &str) -> ShortStr {
    ShortStr::from_checked(Bytes::copy_from_slice(s.as_bytes()))
}

/// A table's entry bytes and what follows, checked for everything [`checked_entries`]
/// relies on (UTF-8 keys, known tags, lengths, nesting depth), without building them.
fn checked_table(i: &[u8], depth: usize) -> PResult<'_, &[u8]> {
    if depth >= MAX_NESTING {
        return fail(WireError::NestingTooDeep);
    }
    let (rest, body) = longstr_slice(i)?;
    let mut at = body;
    while !at.is_empty() {
        let (i, ()) = check_shortstr(at)?;
        at = skip_value(i, depth)?;
    }
    Ok((rest, body))
}

/// Skips one tagged value, checking it for what [`checked_value`] relies on.
fn skip_value(i: &[u8], depth: usize) -> Result<&[u8], nom::Err<WireError>> {
    let (i, tag) = be_u8(i)?;
    let width = match tag {
        b't' | b'b' | b'B' => 1,
        b's' | b'u' => 2,
        b'I' | b'i' | b'f' => 4,
        b'D' => 5,
        b'l' | b'd' | b'T' => 8,
        b'V' => 0,
        b'S' | b'x' => return Ok(longstr_slice(i)?.0),
        b'F' => return Ok(checked_table(i, depth + 1)?.0),
        b'A' => {
            if depth + 1 >= MAX_NESTING {
                return fail(WireError::NestingTooDeep);
            }
            let (rest, mut body) = longstr_slice(i)?;
            while !body.is_empty() {
                body = skip_value(body, depth + 1)?;
            }
            return Ok(rest);
        }
        tag => return fail(WireError::UnknownFieldType { tag }),
    };
    Ok(split(i, width)?.0)
}

// Building what was checked: `checked_table` and `BasicProperties::check` have refused
// every fault already, so these read without checking again (no UTF-8 or depth checks,
// nested tables stay unbuilt). Running out of input still returns an error rather than
// panicking, and cannot happen on checked bytes.

/// The entries of a table whose wire bytes [`checked_table`] accepted.
pub(crate) fn checked_entries(raw: &Bytes) -> Vec<(ShortStr, FieldValue)> {
    // Each entry needs at least a key length and a tag: size the vector from that bound.
    let mut entries = Vec::with_capacity((raw.len() / 2).min(8));
    let mut body: &[u8] = raw;
    while !body.is_empty() {
        let Ok((i, key)) = checked_shortstr(raw, body) else {
            break;
        };
        let Ok((i, value)) = checked_value(raw, i) else { break };
        entries.push((key, value));
        body = i;
    }
    debug_assert!(body.is_empty(), "a checked table failed to build");
    entries
}

/// Reads a short string that was checked.
#[inline]
pub(crate) fn checked_shortstr<'a>(src: &Bytes, i: &'a [u8]) -> PResult<'a, ShortStr> {
    let (i, s) = shortstr_slice(i)?;
    Ok((i, ShortStr::from_checked(share(src, s))))
}

/// Reads a field table that was checked: its bytes, built when first read.
#[inline]
pub(crate) fn checked_table_value<'a>(src: &Bytes, i: &'a [u8]) -> PResult<'a, FieldTable> {
    let (i, body) = longstr_slice(i)?;
    Ok((i, FieldTable::from_validated(share(src, body))))
}

/// Reads one tagged field value that was checked.
fn checked_value<'a>(src: &Bytes, i: &'a [u8]) -> PResult<'a, FieldValue> {
    let (i, tag) = be_u8(i)?;
    Ok(match tag {
        b't' => {
            let (i, v) = be_u8(i)?;
            (i, FieldValue::Bool(v != 0))
        }
        b'b' => be_i8.map(FieldValue::I8).parse(i)?,
        b'B' => be_u8.map(FieldValue::U8).parse(i)?,
        b's' => be_i16.map(FieldValue::I16).parse(i)?,
        b'u' => be_u16.map(FieldValue::U16).parse(i)?,
        b'I' => be_i32.map(FieldValue::I32).parse(i)?,
        b'i' => be_u32.map(FieldValue::U32).parse(i)?,
        b'l' => be_i64.map(FieldValue::I64).parse(i)?,
        b'f' => be_f32.map(FieldValue::F32).parse(i)?,
        b'd' => be_f64.map(FieldValue::F64).parse(i)?,
        b'D' => {
            let (i, scale) = be_u8(i)?;
            let (i, value) = be_i32(i)?;
            (i, FieldValue::Decimal(Decimal { scale, value }))
        }
        b'S' => {
            let (i, s) = longstr(src, i)?;
            (i, FieldValue::LongStr(s))
        }
        b'x' => {
            let (i, s) = longstr(src, i)?;
            (i, FieldValue::Bytes(s))
        }
        b'A' => {
            let (rest, mut body) = longstr_slice(i)?;
            let mut values = Vec::new();
            while !body.is_empty() {
                let (i, value) = checked_value(src, body)?;
                values.push(value);
                body = i;
            }
            (rest, FieldValue::Array(FieldArray(values)))
        }
        b'T' => be_u64.map(FieldValue::Timestamp).parse(i)?,
        b'F' => {
            let (i, t) = checked_table_value(src, i)?;
            (i, FieldValue::Table(t))
        }
        b'V' => (i, FieldValue::Void),
        tag => return fail(WireError::UnknownFieldType { tag }),
    })
}

/// Writes an octet.
#[inline]
pub fn put_octet(buf: &mut BytesMut, v: u8) {
    buf.put_u8(v);
}

/// Writes a 16-bit integer.
#[inline]
pub fn put_short(buf: &mut BytesMut, v: u16) {
    buf.put_u16(v);
}

/// Writes a 32-bit integer.
#[inline]
pub fn put_long(buf: &mut BytesMut, v: u32) {
    buf.put_u32(v);
}

/// Writes a method's class and method ids, in one write (one capacity check).
#[inline]
pub fn put_method_id(buf: &mut BytesMut, id: MethodId) {
    buf.put_u32(u32::from(id.class_id) << 16 | u32::from(id.method_id));
}

/// Writes a 64-bit integer.
#[inline]
pub fn put_longlong(buf: &mut BytesMut, v: u64) {
    buf.put_u64(v);
}

/// Writes a short string.
#[inline]
pub fn put_shortstr(buf: &mut BytesMut, s: &ShortStr) {
    let b = s.as_bytes();
    // ShortStr guarantees at most 255 bytes.
    buf.put_u8(b.len() as u8);
    buf.put_slice(b);
}

/// Writes a long string. Longer than `u32::MAX` cannot fit in a frame and is cut there;
/// frame-size limits refuse such frames long before.
#[inline]
pub fn put_longstr(buf: &mut BytesMut, s: &[u8]) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    buf.put_u32(len);
    buf.put_slice(&s[..len as usize]);
}

/// Writes a field table.
pub fn put_table(buf: &mut BytesMut, table: &FieldTable) {
    if let Some(raw) = table.validated_bytes() {
        // Decoded and unchanged since: its wire bytes are its encoding.
        put_longstr(buf, raw);
        return;
    }
    with_length_prefix(buf, |buf| {
        for (key, value) in table.iter() {
            put_shortstr(buf, key);
            put_field_value(buf, value);
        }
    });
}

fn put_array(buf: &mut BytesMut, array: &FieldArray) {
    with_length_prefix(buf, |buf| {
        for value in &array.0 {
            put_field_value(buf, value);
        }
    });
}

/// Writes a 32-bit length, then what `body` writes, then patches the length in.
#[inline]
fn with_length_prefix(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let at = buf.len();
    buf.put_u32(0);
    body(buf);
    let len = (buf.len() - at - 4) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_field_value(buf: &mut BytesMut, value: &FieldValue) {
    buf.put_u8(value.tag());
    match value {
        FieldValue::Bool(v) => buf.put_u8(u8::from(*v)),
        FieldValue::I8(v) => buf.put_i8(*v),
        FieldValue::U8(v) => buf.put_u8(*v),
        FieldValue::I16(v) => buf.put_i16(*v),
        FieldValue::U16(v) => buf.put_u16(*v),
        FieldValue::I32(v) => buf.put_i32(*v),
        FieldValue::U32(v) => buf.put_u32(*v),
        FieldValue::I64(v) => buf.put_i64(*v),
        FieldValue::F32(v) => buf.put_f32(*v),
        FieldValue::F64(v) => buf.put_f64(*v),
        FieldValue::Decimal(d) => {
            buf.put_u8(d.scale);
            buf.put_i32(d.value);
        }
        FieldValue::LongStr(s) | FieldValue::Bytes(s) => put_longstr(buf, s),
        FieldValue::Array(a) => put_array(buf, a),
        FieldValue::Timestamp(v) => buf.put_u64(*v),
        FieldValue::Table(t) => put_table(buf, t),
        FieldValue::Void => {}
    }
}

/// Parses a standalone field table (a 32-bit length and its entries) from `src`,
/// requiring that nothing follows it. The fuzz target and tools use this.
pub fn parse_table(src: &Bytes) -> Result<FieldTable, WireError> {
    exact(table(src, src))
}

/// The value of a parse that had to use up its whole input: bytes left over are
/// [`WireError::TrailingBytes`].
pub fn exact<T>(parsed: PResult<'_, T>) -> Result<T, WireError> {
    match parsed {
        Ok(([], value)) => Ok(value),
        Ok((rest, _)) => Err(WireError::TrailingBytes { count: rest.len() }),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e),
        Err(nom::Err::Incomplete(_)) => Err(WireError::Truncated),
    }
}

/// Encodes a standalone field table, the inverse of [`parse_table`].
pub fn encode_table(table: &FieldTable, buf: &mut BytesMut) {
    put_table(buf, table);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_entry(value: FieldValue) -> FieldTable {
        let mut t = FieldTable::new();
        t.insert(ShortStr::from_static("k"), value);
        t
    }

    /// A table of `entries` bytes behind its length prefix.
    fn wire_table(entries: &[u8]) -> Bytes {
        let mut buf = (entries.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(entries);
        Bytes::from(buf)
    }

    /// `depth` tables, each the single entry `k` of the one around it.
    fn nested_tables(depth: usize) -> Vec<u8> {
        let mut inner = Vec::new();
        for _ in 0..depth {
            let mut entry = b"\x01kF".to_vec();
            entry.extend_from_slice(&(inner.len() as u32).to_be_bytes());
            entry.extend_from_slice(&inner);
            inner = entry;
        }
        inner
    }

    #[test]
    fn a_table_is_checked_whole_when_decoded_though_built_when_read() {
        // Every fault is found at decode, however deep, before any entry is read.
        let refused: [(&[u8], WireError); 6] = [
            (b"\x01kZ", WireError::UnknownFieldType { tag: b'Z' }),
            (b"\x01kI\x00\x00", WireError::Truncated),
            (b"\x02\xff\xfeV", WireError::InvalidUtf8),
            (b"\x01kF\x00\x00\x00\x03\x01\xc3V", WireError::InvalidUtf8),
            (b"\x01kA\x00\x00\x00\x02Vq", WireError::UnknownFieldType { tag: b'q' }),
            (b"\x01kF\x00\x00\x00\x08\x01jS\x00\x00\x00\x09x", WireError::Truncated),
        ];
        for (entries, error) in refused {
            assert_eq!(parse_table(&wire_table(entries)), Err(error), "{entries:?}");
        }
        let deepest = wire_table(&nested_tables(MAX_NESTING - 1));
        assert!(parse_table(&deepest).is_ok());
        let too_deep = wire_table(&nested_tables(MAX_NESTING));
        assert_eq!(parse_table(&too_deep), Err(WireError::NestingTooDeep));
    }

    #[test]
    fn a_decoded_table_reads_like_a_built_one_and_encodes_its_changes() {
        let built = FieldTable::new()
            .with("x-trace", "abc")
            .with("n", 3)
            .with("inner", FieldTable::new().with("ok", true))
            .with("list", FieldArray(vec![FieldValue::I8(-1), FieldValue::Void]));
        let mut buf = BytesMut::new();
        encode_table(&built, &mut buf);
        let wire = buf.freeze();

        let decoded = parse_table(&wire).unwrap();
        assert_eq!(decoded, built);
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded.get("n"), Some(&FieldValue::I32(3)));
        let Some(FieldValue::Table(inner)) = decoded.get("inner") else {
            panic!("{decoded:?}")
        };
        assert_eq!(inner.get("ok"), Some(&FieldValue::Bool(true)));
        assert_eq!(format!("{decoded:?}"), format!("{built:?}"));

        // Unchanged, a decoded table (and a copy) writes back its wire bytes.
        let mut again = BytesMut::new();
        encode_table(&decoded.clone(), &mut again);
        assert_eq!(again, wire);

        // Changed, it writes its entries.
        let mut changed = decoded.clone();
        changed.insert(ShortStr::from_static("n"), 4);
        assert_eq!(changed.remove("x-trace"), Some(FieldValue::from("abc")));
        let mut out = BytesMut::new();
        encode_table(&changed, &mut out);
        let reread = parse_table(&out.freeze()).unwrap();
        assert_eq!(reread, changed);
        assert_eq!(reread.get("n"), Some(&FieldValue::I32(4)));
        assert_eq!(reread.get("x-trace"), None);
        assert_ne!(reread, decoded);
        assert!(parse_table(&wire_table(b"")).unwrap().is_empty());
    }

    #[test]
    fn a_decoded_table_that_does_not_change_keeps_its_bytes() {
        // A bool sent as 2 (not what warren writes) survives a lookup, a failed remove
        // and a copy, because the table is written back as it came.
        let wire = wire_table(b"\x01bt\x02\x01kF\x00\x00\x00\x04\x01ot\x07");
        let mut table = parse_table(&wire).unwrap();
        assert_eq!(table.get("b"), Some(&FieldValue::Bool(true)));
        assert_eq!(table.remove("absent"), None);
        let copy = table.clone();
        for t in [&table, &copy] {
            let mut out = BytesMut::new();
            encode_table(t, &mut out);
            assert_eq!(out, wire);
        }
        // A change writes the entries, in warren's own encoding.
        table.insert(ShortStr::from_static("n"), 1u8);
        let mut out = BytesMut::new();
        encode_table(&table, &mut out);
        assert_eq!(&out[4..8], b"\x01bt\x01");
        assert_eq!(&out[8..19], b"\x01kF\x00\x00\x00\x04\x01ot\x07");
    }

    #[test]
    fn decimals_are_signed_both_ways() {
        // -0.35935 as pika and pamqp encode it: scale 5, value -35935 (0xffff73a1).
        let wire = Bytes::from_static(b"\x00\x00\x00\x08\x01kD\x05\xff\xff\x73\xa1");
        let negative = one_entry(FieldValue::Decimal(Decimal::new(5, -35_935)));
        assert_eq!(parse_table(&wire), Ok(negative.clone()));
        let mut buf = BytesMut::new();
        encode_table(&negative, &mut buf);
        assert_eq!(buf, wire);

        for value in [i32::MIN, -1, 0, 1, i32::MAX] {
            let t = one_entry(FieldValue::Decimal(Decimal::new(255, value)));
            let mut buf = BytesMut::new();
            encode_table(&t, &mut buf);
            assert_eq!(
                buf[6..],
                [b'D', 255].into_iter().chain(value.to_be_bytes()).collect::<Vec<_>>()
            );
            assert_eq!(parse_table(&buf.freeze()), Ok(t), "{value}");
        }
    }
}
