//! Value types of the wire format: short strings, field tables, method ids, reply codes.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

use super::received::{BuildChecked, Received};

/// A short string: UTF-8 text of at most 255 bytes, sharing the buffer it was read from.
///
/// Make one from text with `try_from` (`&str`, `String`, `&String`) or `parse`, or from a
/// literal with [`ShortStr::from_static`]. Text over 255 bytes is refused with
/// [`ShortStrTooLong`], which converts into [`warren::Error`](crate::Error) (as
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument)), so `?` works in a function
/// returning `Result<_, warren::Error>`:
///
/// ```
/// use warren::wire::ShortStr;
///
/// fn correlation_id(order: &str) -> Result<ShortStr, warren::Error> {
///     let id = ShortStr::try_from(format!("order-{order}"))?;
///     Ok(id)
/// }
///
/// assert_eq!(correlation_id("7")?, "order-7");
/// let too_long = correlation_id(&"x".repeat(300)).unwrap_err();
/// assert!(matches!(too_long, warren::Error::InvalidArgument(_)));
///
/// let key: ShortStr = "x-retries".parse()?;
/// assert_eq!(key.as_str(), "x-retries");
/// # Ok::<(), warren::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortStr(Bytes);

/// A string too long for a short string (more than 255 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortStrTooLong {
    /// The length that was refused.
    pub len: usize,
}

impl fmt::Display for ShortStrTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "short string of {} bytes exceeds 255", self.len)
    }
}

impl std::error::Error for ShortStrTooLong {}

/// For conversions that cannot fail (`ShortStr` into `ShortStr`), so that generic code
/// bounded by `ShortStrTooLong: From<E>` takes them too.
impl From<std::convert::Infallible> for ShortStrTooLong {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl ShortStr {
    /// The empty string.
    pub const EMPTY: ShortStr = ShortStr(Bytes::from_static(b""));

    /// A short string from a literal. Strings longer than 255 bytes fail to compile
    /// when used in a `const`, and panic otherwise: use `try_from` for runtime text.
    pub const fn from_static(s: &'static str) -> Self {
        assert!(s.len() <= 255, "short string longer than 255 bytes");
        ShortStr(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes already checked to be UTF-8 and at most 255 bytes long.
    pub(crate) fn from_checked(bytes: Bytes) -> Self {
        debug_assert!(bytes.len() <= 255 && std::str::from_utf8(&bytes).is_ok());
        ShortStr(bytes)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Construction guarantees UTF-8; the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Its length in bytes (at most 255). Without this, `len` would go through `Deref`
    /// to `str`, which checks the UTF-8 again on every call.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Deref for ShortStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ShortStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Text compares as bytes: a short string is UTF-8 already, and `as_str` would check it
// again on every comparison (field-table lookups make many).
impl PartialEq<str> for ShortStr {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for ShortStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl TryFrom<&str> for ShortStr {
    type Error = ShortStrTooLong;
    fn try_from(s: &str) -> Result<Self, ShortStrTooLong> {
        if s.len() > 255 {
            return Err(ShortStrTooLong { len: s.len() });
        }
        Ok(ShortStr(Bytes::copy_from_slice(s.as_bytes())))
    }
}

impl TryFrom<String> for ShortStr {
    type Error = ShortStrTooLong;
    fn try_from(s: String) -> Result<Self, ShortStrTooLong> {
        if s.len() > 255 {
            return Err(ShortStrTooLong { len: s.len() });
        }
        Ok(ShortStr(Bytes::from(s)))
    }
}

impl TryFrom<&String> for ShortStr {
    type Error = ShortStrTooLong;
    fn try_from(s: &String) -> Result<Self, ShortStrTooLong> {
        ShortStr::try_from(s.as_str())
    }
}

impl std::str::FromStr for ShortStr {
    type Err = ShortStrTooLong;
    fn from_str(s: &str) -> Result<Self, ShortStrTooLong> {
        ShortStr::try_from(s)
    }
}

impl TryFrom<&ShortStr> for ShortStr {
    type Error = ShortStrTooLong;
    fn try_from(s: &ShortStr) -> Result<Self, ShortStrTooLong> {
        Ok(s.clone())
    }
}

/// A decimal value (field type `D`): `value / 10^scale`.
///
/// On the wire: the scale as an unsigned octet, then the value as a *signed* 32-bit
/// integer, as RabbitMQ's Java, Go and .NET clients, pika and pamqp write and read it:
/// -0.35935 is scale 5, value -35935. [`Display`](fmt::Display) prints the exact decimal.
///
/// ```
/// use warren::wire::Decimal;
///
/// let price = Decimal::new(5, -35_935);
/// assert_eq!(price.to_string(), "-0.35935");
/// assert_eq!(Decimal::new(2, 12_345).to_string(), "123.45");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// Number of decimal digits after the point.
    pub scale: u8,
    /// The unscaled value, signed.
    pub value: i32,
}

impl Decimal {
    /// The decimal `value / 10^scale`.
    pub const fn new(scale: u8, value: i32) -> Self {
        Decimal { scale, value }
    }
}

impl fmt::Display for Decimal {
    /// The exact value with `scale` digits after the point: scale 2, value -5 is `-0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.value.unsigned_abs().to_string();
        let scale = usize::from(self.scale);
        let mut text = String::with_capacity(digits.len().max(scale) + 3);
        if self.value < 0 {
            text.push('-');
        }
        if scale == 0 {
            text.push_str(&digits);
        } else if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            text.push_str(int);
            text.push('.');
            text.push_str(frac);
        } else {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', scale - digits.len()));
            text.push_str(&digits);
        }
        f.pad(&text)
    }
}

/// A field-table or field-array value, with RabbitMQ's type tags.
///
/// RabbitMQ reads `s` as a signed 16-bit integer and `l` as a signed 64-bit integer
/// (where the 0-9-1 errata differ); this type follows RabbitMQ.
///
/// Plain Rust values convert with `From`/`into()`, each to the tag of the same width:
///
/// | from | to |
/// |---|---|
/// | `bool` | `t` [`Bool`](Self::Bool) |
/// | `i8` `u8` `i16` `u16` `i32` `u32` `i64` | `b` `B` `s` `u` `I` `i` `l` (unsuffixed literals are `i32`) |
/// | `f32` `f64` | `f` `d` (unsuffixed literals are `f64`) |
/// | [`Decimal`] | `D` |
/// | `&str`, `String`, `&String`, [`ShortStr`] | `S` [`LongStr`](Self::LongStr) |
/// | `Bytes`, `Vec<u8>`, `&[u8]`, `[u8; N]`, `&[u8; N]` (`b"..."`) | `x` [`Bytes`](Self::Bytes) |
/// | `SystemTime` | `T` [`Timestamp`](Self::Timestamp), whole seconds |
/// | [`FieldTable`] | `F` |
/// | [`FieldArray`], `Vec<FieldValue>` | `A` |
/// | `Option<T>` | `None` is `V` [`Void`](Self::Void), `Some(v)` is `v` |
///
/// There is no `u64`, `u128` or `usize` conversion: RabbitMQ has no unsigned 64-bit
/// tag. Convert such a count with `i64::try_from` first.
///
/// ```
/// use warren::wire::FieldValue;
///
/// assert_eq!(FieldValue::from(7u16), FieldValue::U16(7));
/// assert_eq!(FieldValue::from(b"\x01".to_vec()).tag(), b'x');
/// assert_eq!(FieldValue::from(None::<&str>), FieldValue::Void);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`: boolean.
    Bool(bool),
    /// `b`: signed 8-bit integer.
    I8(i8),
    /// `B`: unsigned 8-bit integer.
    U8(u8),
    /// `s`: signed 16-bit integer.
    I16(i16),
    /// `u`: unsigned 16-bit integer.
    U16(u16),
    /// `I`: signed 32-bit integer.
    I32(i32),
    /// `i`: unsigned 32-bit integer.
    U32(u32),
    /// `l`: signed 64-bit integer.
    I64(i64),
    /// `f`: 32-bit float.
    F32(f32),
    /// `d`: 64-bit float.
    F64(f64),
    /// `D`: decimal.
    Decimal(Decimal),
    /// `S`: long string (bytes, usually UTF-8 text).
    LongStr(Bytes),
    /// `A`: array of values.
    Array(FieldArray),
    /// `T`: timestamp, seconds since the Unix epoch.
    Timestamp(u64),
    /// `F`: nested table.
    Table(FieldTable),
    /// `V`: no value.
    Void,
    /// `x`: byte array.
    Bytes(Bytes),
}

impl FieldValue {
    /// The wire type tag of this value.
    pub fn tag(&self) -> u8 {
        match self {
            FieldValue::Bool(_) => b't',
            FieldValue::I8(_) => b'b',
            FieldValue::U8(_) => b'B',
            FieldValue::I16(_) => b's',
            FieldValue::U16(_) => b'u',
            FieldValue::I32(_) => b'I',
            FieldValue::U32(_) => b'i',
            FieldValue::I64(_) => b'l',
            FieldValue::F32(_) => b'f',
            FieldValue::F64(_) => b'd',
            FieldValue::Decimal(_) => b'D',
            FieldValue::LongStr(_) => b'S',
            FieldValue::Array(_) => b'A',
            FieldValue::Timestamp(_) => b'T',
            FieldValue::Table(_) => b'F',
            FieldValue::Void => b'V',
            FieldValue::Bytes(_) => b'x',
        }
    }

    /// The value as text, for `S` values that hold UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::LongStr(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, for any integer type that fits.
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            FieldValue::I8(v) => v.into(),
            FieldValue::U8(v) => v.into(),
            FieldValue::I16(v) => v.into(),
            FieldValue::U16(v) => v.into(),
            FieldValue::I32(v) => v.into(),
            FieldValue::U32(v) => v.into(),
            FieldValue::I64(v) => v,
            FieldValue::Timestamp(v) => i64::try_from(v).ok()?,
            _ => return None,
        })
    }
}

/// A field table: named values in wire order. Keys may repeat on the wire; lookups
/// return the first match and [`insert`](Self::insert) replaces it.
///
/// Build one as a map literal with [`field_table!`](crate::field_table), in one
/// expression with [`with`](Self::with) (or [`try_with`](Self::try_with) for keys made
/// at run time), or by collecting `(key, value)` pairs; keys are text, values anything
/// [`FieldValue`] converts from:
///
/// ```
/// use warren::field_table;
/// use warren::wire::FieldTable;
///
/// let a = field_table! { "x-match" => "all", "format" => "pdf", "pages" => 12 };
/// let b = FieldTable::new().with("x-match", "all").with("format", "pdf").with("pages", 12);
/// assert_eq!(a, b);
/// ```
///
/// A decoded table keeps its validated wire bytes and builds its entries on first read, so
/// a delivery whose headers nobody reads costs no entry building, and an unchanged table
/// is written back as one copy.
#[derive(Default, Clone)]
pub struct FieldTable(Option<Box<Entries>>);

/// A non-empty table's entries: boxed, so a table costs a pointer in the methods and
/// properties that have one (most are empty), and frames stay small enough to move
/// without a `memcpy` call.
type Entries = Received<Vec<(ShortStr, FieldValue)>>;

impl BuildChecked for Vec<(ShortStr, FieldValue)> {
    fn build_checked(raw: &Bytes) -> Self {
        super::codec::checked_entries(raw)
    }
}

impl FieldTable {
    /// An empty table.
    pub const fn new() -> Self {
        FieldTable(None)
    }

    /// A table over wire bytes that [`codec`](super::codec) has validated.
    pub(crate) fn from_validated(raw: Bytes) -> Self {
        if raw.is_empty() {
            return FieldTable(None);
        }
        FieldTable(Some(Box::new(Received::checked(raw))))
    }

    /// The entries' wire bytes, when the table was decoded and not changed since.
    pub(crate) fn validated_bytes(&self) -> Option<&Bytes> {
        self.0.as_ref()?.raw()
    }

    fn entries(&self) -> &[(ShortStr, FieldValue)] {
        match &self.0 {
            Some(entries) => entries.get(),
            None => &[],
        }
    }

    /// The entries, to change: the wire bytes no longer describe them.
    fn entries_mut(&mut self) -> &mut Vec<(ShortStr, FieldValue)> {
        self.0.get_or_insert_with(Box::default).get_mut()
    }

    /// Sets `key` to `value`, replacing an existing entry in place or appending.
    pub fn insert(&mut self, key: ShortStr, value: impl Into<FieldValue>) -> &mut Self {
        let value = value.into();
        let entries = self.entries_mut();
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
        self
    }

    /// Appends an entry without looking for an existing key.
    pub fn push(&mut self, key: ShortStr, value: FieldValue) {
        self.entries_mut().push((key, value));
    }

    /// The value of the first entry named `key`.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.entries().iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Removes and returns the first entry named `key`.
    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        // Look first: a table that does not change keeps its wire bytes.
        let at = self.entries().iter().position(|(k, _)| *k == key)?;
        Some(self.entries_mut().remove(at).1)
    }

    /// Entries in wire order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&ShortStr, &FieldValue)> {
        self.entries().iter().map(|(k, v)| (k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// True when the table has no entries (a decoded table's bytes are never empty, so
    /// it need not be built to tell).
    pub fn is_empty(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|entries| entries.raw().is_none() && entries.get().is_empty())
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        if n == 0 {
            return FieldTable(None);
        }
        FieldTable(Some(Box::new(Received::built(Vec::with_capacity(n)))))
    }
}

/// Entries compare in order. Two tables decoded from the same bytes are equal without
/// being built, NaN values included.
impl PartialEq for FieldTable {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => a.eq_by(b, |a, b| a == b),
            _ => self.entries() == other.entries(),
        }
    }
}

impl fmt::Debug for FieldTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FieldTable").field(&self.entries()).finish()
    }
}

/// A field array: values in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldArray(pub Vec<FieldValue>);

/// A borrowed view of one method or property field, for generic inspection
/// (the `warren decode` tool prints frames through it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldRef<'a> {
    /// A bit.
    Bit(bool),
    /// An octet.
    Octet(u8),
    /// A 16-bit integer.
    Short(u16),
    /// A 32-bit integer.
    Long(u32),
    /// A 64-bit integer.
    LongLong(u64),
    /// A timestamp in seconds.
    Timestamp(u64),
    /// A short string.
    ShortStr(&'a ShortStr),
    /// A long string.
    LongStr(&'a Bytes),
    /// A field table.
    Table(&'a FieldTable),
}

/// A class id and method id pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MethodId {
    /// The class id.
    pub class_id: u16,
    /// The method id within the class.
    pub method_id: u16,
}

impl MethodId {
    /// A method id.
    pub const fn new(class_id: u16, method_id: u16) -> Self {
        MethodId { class_id, method_id }
    }
}

impl fmt::Display for MethodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}.{}", self.class_id, self.method_id),
        }
    }
}

/// What the spec says of one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    /// Class and method ids.
    pub id: MethodId,
    /// `class.method`, as in the spec.
    pub name: &'static str,
    /// The sender waits for one of `responses`.
    pub synchronous: bool,
    /// The method is followed by a content header and body frames.
    pub content: bool,
    /// The methods that answer this one.
    pub responses: &'static [MethodId],
    /// The server may send it.
    pub sent_by_server: bool,
    /// The client may send it.
    pub sent_by_client: bool,
}

/// An AMQP reply code. Unknown codes are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(pub u16);

impl fmt::Debug for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{}({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Which scope an error reply code closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorSeverity {
    /// A soft error: the channel closes, the connection stays.
    Channel,
    /// A hard error: the whole connection closes.
    Connection,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_convert_from_text() {
        let owned = String::from("x-retries");
        assert_eq!(ShortStr::try_from("x-retries").unwrap(), "x-retries");
        assert_eq!(ShortStr::try_from(&owned).unwrap(), "x-retries");
        assert_eq!(ShortStr::try_from(owned).unwrap(), "x-retries");
        assert_eq!("x-retries".parse::<ShortStr>().unwrap(), "x-retries");
        assert_eq!(ShortStr::try_from(&ShortStr::from_static("k")).unwrap(), "k");

        // The limit counts bytes, not characters.
        assert_eq!(ShortStr::try_from("k".repeat(255)).unwrap().len(), 255);
        assert_eq!(ShortStr::try_from("k".repeat(256)), Err(ShortStrTooLong { len: 256 }));
        assert_eq!(
            ShortStr::try_from("é".repeat(128).as_str()),
            Err(ShortStrTooLong { len: 256 })
        );
        assert_eq!("é".repeat(128).parse::<ShortStr>(), Err(ShortStrTooLong { len: 256 }));
        assert_eq!(
            ShortStrTooLong { len: 256 }.to_string(),
            "short string of 256 bytes exceeds 255"
        );
    }

    #[test]
    fn a_short_string_length_counts_bytes() {
        let s = ShortStr::try_from("é-1").unwrap();
        assert_eq!((s.len(), s.as_str().len(), s.chars().count()), (4, 4, 3));
        assert!(!s.is_empty());
        assert!(ShortStr::EMPTY.is_empty());
        assert_eq!(ShortStr::EMPTY.len(), 0);
    }

    #[test]
    fn decimals_print_exactly() {
        let d = |scale, value| Decimal::new(scale, value).to_string();
        assert_eq!(d(0, 42), "42");
        assert_eq!(d(0, -42), "-42");
        assert_eq!(d(2, 12_345), "123.45");
        assert_eq!(d(5, -35_935), "-0.35935");
        assert_eq!(d(3, 5), "0.005");
        assert_eq!(d(3, -5), "-0.005");
        assert_eq!(d(2, 100), "1.00");
        assert_eq!(d(0, i32::MIN), "-2147483648");
        assert_eq!(d(12, i32::MIN), "-0.002147483648");
        assert_eq!(d(1, 0), "0.0");
        assert_eq!(format!("{:>8}", Decimal::new(1, -5)), "    -0.5");
    }
}
