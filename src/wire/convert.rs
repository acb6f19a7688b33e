//! Building field values and tables from plain Rust values: the `From` conversions into
//! [`FieldValue`], the [`FieldTable`] builder ([`with`](FieldTable::with),
//! [`try_with`](FieldTable::try_with), `collect`) and the `field_table!` and
//! `field_array!` macros.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Decimal, FieldArray, FieldTable, FieldValue, ShortStr, ShortStrTooLong};

macro_rules! from_copy {
    ($($ty:ty => $variant:ident),* $(,)?) => {$(
        impl From<$ty> for FieldValue {
            fn from(v: $ty) -> Self {
                FieldValue::$variant(v)
            }
        }
    )*};
}

from_copy! {
    bool => Bool,
    i8 => I8,
    u8 => U8,
    i16 => I16,
    u16 => U16,
    i32 => I32,
    u32 => U32,
    i64 => I64,
    f32 => F32,
    f64 => F64,
    Decimal => Decimal,
    FieldTable => Table,
    FieldArray => Array,
}

/// Text is a long string (`S`).
impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::LongStr(Bytes::copy_from_slice(v.as_bytes()))
    }
}

/// Text is a long string (`S`); the `String`'s buffer is kept, not copied.
impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::LongStr(Bytes::from(v))
    }
}

/// Text is a long string (`S`).
impl From<&String> for FieldValue {
    fn from(v: &String) -> Self {
        FieldValue::from(v.as_str())
    }
}

/// A short string's text as a long string (`S`), sharing its buffer.
impl From<ShortStr> for FieldValue {
    fn from(v: ShortStr) -> Self {
        FieldValue::LongStr(v.as_bytes().clone())
    }
}

/// Bytes are a byte array (`x`), shared, not copied.
impl From<Bytes> for FieldValue {
    fn from(v: Bytes) -> Self {
        FieldValue::Bytes(v)
    }
}

/// Bytes are a byte array (`x`); the vector's buffer is kept, not copied.
impl From<Vec<u8>> for FieldValue {
    fn from(v: Vec<u8>) -> Self {
        FieldValue::Bytes(Bytes::from(v))
    }
}

/// Bytes are a byte array (`x`).
impl From<&[u8]> for FieldValue {
    fn from(v: &[u8]) -> Self {
        FieldValue::Bytes(Bytes::copy_from_slice(v))
    }
}

/// Bytes are a byte array (`x`): `b"..."` literals.
impl<const N: usize> From<&[u8; N]> for FieldValue {
    fn from(v: &[u8; N]) -> Self {
        FieldValue::from(&v[..])
    }
}

/// Bytes are a byte array (`x`).
impl<const N: usize> From<[u8; N]> for FieldValue {
    fn from(v: [u8; N]) -> Self {
        FieldValue::from(&v[..])
    }
}

/// Values are an array (`A`).
impl From<Vec<FieldValue>> for FieldValue {
    fn from(v: Vec<FieldValue>) -> Self {
        FieldValue::Array(FieldArray(v))
    }
}

/// A point in time is a timestamp (`T`): whole seconds since the Unix epoch, the
/// fraction dropped; times before the epoch, which `T` cannot hold, become 0.
impl From<SystemTime> for FieldValue {
    fn from(v: SystemTime) -> Self {
        FieldValue::Timestamp(v.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }
}

/// `None` is void (`V`), as pika and pamqp read Python's `None`; `Some(v)` is `v`.
impl<T: Into<FieldValue>> From<Option<T>> for FieldValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(FieldValue::Void, Into::into)
    }
}

impl FieldTable {
    /// This table with `key` set to `value` (replacing an entry of that name, as
    /// [`insert`](Self::insert) does), for building a table in one expression. The key
    /// is any text: `&str`, `String`, `&String` or [`ShortStr`]; the value anything
    /// that converts into a [`FieldValue`].
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use warren::wire::{Decimal, FieldTable, FieldValue};
    ///
    /// let headers = FieldTable::new()
    ///     .with("x-retries", 3u8)
    ///     .with("x-source", "billing")
    ///     .with("x-price", Decimal::new(2, -1_999))
    ///     .with("x-sent-at", SystemTime::now())
    ///     .with("x-raw", b"\x00\x01")
    ///     .with("x-route", FieldTable::new().with("region", "eu").with("zone", 2));
    /// assert_eq!(headers.get("x-retries"), Some(&FieldValue::U8(3)));
    /// assert_eq!(headers.get("x-source").and_then(FieldValue::as_str), Some("billing"));
    /// ```
    ///
    /// # Panics
    ///
    /// When the key is longer than 255 bytes. Keys are nearly always literals; for keys
    /// made at run time, [`try_with`](Self::try_with) returns the error instead.
    #[track_caller]
    pub fn with<K, V>(self, key: K, value: V) -> Self
    where
        K: TryInto<ShortStr>,
        ShortStrTooLong: From<K::Error>,
        V: Into<FieldValue>,
    {
        match self.try_with(key, value) {
            Ok(table) => table,
            Err(e) => panic!("field-table key: {e}"),
        }
    }

    /// Like [`with`](Self::with), but a key over 255 bytes is an error (which converts
    /// into [`warren::Error`](crate::Error), so `?` works).
    ///
    /// ```
    /// use warren::wire::FieldTable;
    ///
    /// fn tags(names: &[String]) -> Result<FieldTable, warren::Error> {
    ///     let mut table = FieldTable::new();
    ///     for name in names {
    ///         table = table.try_with(name, true)?;
    ///     }
    ///     Ok(table)
    /// }
    ///
    /// assert_eq!(tags(&["a".into(), "b".into()])?.len(), 2);
    /// assert!(tags(&["k".repeat(256)]).is_err());
    /// # Ok::<(), warren::Error>(())
    /// ```
    pub fn try_with<K, V>(mut self, key: K, value: V) -> Result<Self, ShortStrTooLong>
    where
        K: TryInto<ShortStr>,
        ShortStrTooLong: From<K::Error>,
        V: Into<FieldValue>,
    {
        self.insert(key.try_into()?, value);
        Ok(self)
    }

    /// [`insert`](Self::insert) with a key given as text (`&str`, `String`, `&String` or
    /// [`ShortStr`]): a key over 255 bytes is an error, which converts into
    /// [`warren::Error`](crate::Error).
    ///
    /// ```
    /// use warren::wire::{FieldTable, FieldValue};
    ///
    /// let mut headers = FieldTable::new();
    /// let tenant = String::from("x-tenant");
    /// headers.try_insert(&tenant, "acme")?.try_insert("x-attempt", 2u8)?;
    /// assert_eq!(headers.get("x-attempt"), Some(&FieldValue::U8(2)));
    /// assert!(headers.try_insert("k".repeat(256), 1).is_err());
    /// # Ok::<(), warren::Error>(())
    /// ```
    pub fn try_insert<K, V>(&mut self, key: K, value: V) -> Result<&mut Self, ShortStrTooLong>
    where
        K: TryInto<ShortStr>,
        ShortStrTooLong: From<K::Error>,
        V: Into<FieldValue>,
    {
        Ok(self.insert(key.try_into()?, value))
    }
}

/// Collects `(key, value)` pairs into a table, keeping every pair in order (repeated
/// keys too, as the wire allows; [`FieldTable::get`] finds the first). Keys are text
/// (`&str`, `String`, `&String`, [`ShortStr`]), values anything that converts into a
/// [`FieldValue`].
///
/// ```
/// use warren::wire::{FieldTable, FieldValue};
///
/// let limits: FieldTable = [("x-max-length", 10_000), ("x-delivery-limit", 5)].into_iter().collect();
/// assert_eq!(limits.get("x-delivery-limit"), Some(&FieldValue::I32(5)));
/// ```
///
/// # Panics
///
/// When a key is longer than 255 bytes; see [`FieldTable::try_with`] for keys made at
/// run time.
impl<K, V> FromIterator<(K, V)> for FieldTable
where
    K: TryInto<ShortStr>,
    ShortStrTooLong: From<K::Error>,
    V: Into<FieldValue>,
{
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut table = FieldTable::with_capacity(iter.size_hint().0);
        for (key, value) in iter {
            match key.try_into() {
                Ok(key) => table.push(key, value.into()),
                Err(e) => panic!("field-table key: {}", ShortStrTooLong::from(e)),
            }
        }
        table
    }
}

impl FieldArray {
    /// An empty array.
    pub const fn new() -> Self {
        FieldArray(Vec::new())
    }
}

impl From<Vec<FieldValue>> for FieldArray {
    fn from(v: Vec<FieldValue>) -> Self {
        FieldArray(v)
    }
}

/// Collects values of one type into an array: `(1..=3).collect::<FieldArray>()`.
impl<V: Into<FieldValue>> FromIterator<V> for FieldArray {
    fn from_iter<I: IntoIterator<Item = V>>(iter: I) -> Self {
        FieldArray(iter.into_iter().map(Into::into).collect())
    }
}

/// A [`FieldTable`](crate::wire::FieldTable) from `key => value` pairs, as easy as a map
/// literal: keys are text (`&str`, `String`, [`ShortStr`](crate::wire::ShortStr)), values
/// anything that converts into a [`FieldValue`](crate::wire::FieldValue): integers of
/// every width up to 64 bits, floats, `bool`, text, bytes, [`Decimal`](crate::wire::Decimal),
/// `SystemTime`, `Option` (`None` is void), nested tables and arrays.
///
/// A repeated key replaces the earlier value, as in a map. Expands to
/// [`FieldTable::with`](crate::wire::FieldTable::with) calls, so a key over 255 bytes
/// panics.
///
/// ```
/// use warren::{field_array, field_table};
/// use warren::wire::{FieldTable, FieldValue};
///
/// let args = field_table! {
///     "x-queue-type" => "quorum",
///     "x-delivery-limit" => 5,
///     "x-dead-letter-exchange" => "dlx",
///     "x-route" => field_table! { "tags" => field_array!["a", "b"], "weight" => 0.5 },
/// };
/// assert_eq!(args.len(), 4);
/// assert_eq!(args.get("x-delivery-limit"), Some(&FieldValue::I32(5)));
/// assert_eq!(field_table! {}, FieldTable::new());
/// ```
#[macro_export]
macro_rules! field_table {
    () => {
        $crate::wire::FieldTable::new()
    };
    ($($key:expr => $value:expr),+ $(,)?) => {
        $crate::wire::FieldTable::new()$(.with($key, $value))+
    };
}

/// A [`FieldArray`](crate::wire::FieldArray) of values of any types that convert into a
/// [`FieldValue`](crate::wire::FieldValue), like `vec!`.
///
/// ```
/// use warren::field_array;
/// use warren::wire::FieldValue;
///
/// let mixed = field_array![1, "two", 3.5, false, None::<i32>];
/// assert_eq!(mixed.0[1], FieldValue::from("two"));
/// assert_eq!(mixed.0[4], FieldValue::Void);
/// ```
#[macro_export]
macro_rules! field_array {
    () => {
        $crate::wire::FieldArray::new()
    };
    ($($value:expr),+ $(,)?) => {
        $crate::wire::FieldArray(::std::vec![$($crate::wire::FieldValue::from($value)),+])
    };
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;

    use super::*;
    use crate::wire::{encode_table, parse_table};

    #[test]
    fn every_plain_type_converts_to_its_tag() {
        let cases: Vec<(FieldValue, FieldValue)> = vec![
            (true.into(), FieldValue::Bool(true)),
            ((-8i8).into(), FieldValue::I8(-8)),
            (200u8.into(), FieldValue::U8(200)),
            ((-300i16).into(), FieldValue::I16(-300)),
            (60_000u16.into(), FieldValue::U16(60_000)),
            ((-7i32).into(), FieldValue::I32(-7)),
            (4_000_000_000u32.into(), FieldValue::U32(4_000_000_000)),
            (i64::MIN.into(), FieldValue::I64(i64::MIN)),
            (1.5f32.into(), FieldValue::F32(1.5)),
            ((-2.25f64).into(), FieldValue::F64(-2.25)),
            // Unsuffixed literals fall back to i32 and f64.
            (FieldValue::from(5), FieldValue::I32(5)),
            (FieldValue::from(0.5), FieldValue::F64(0.5)),
            (
                Decimal::new(5, -35_935).into(),
                FieldValue::Decimal(Decimal::new(5, -35_935)),
            ),
            ("héllo".into(), FieldValue::LongStr(Bytes::from("héllo"))),
            (String::from("s").into(), FieldValue::LongStr(Bytes::from("s"))),
            ((&String::from("s")).into(), FieldValue::LongStr(Bytes::from("s"))),
            (ShortStr::from_static("k").into(), FieldValue::LongStr(Bytes::from("k"))),
            (
                Bytes::from_static(b"\0\xff").into(),
                FieldValue::Bytes(Bytes::from_static(b"\0\xff")),
            ),
            (vec![0u8, 0xff].into(), FieldValue::Bytes(Bytes::from_static(b"\0\xff"))),
            (
                (&[0u8, 0xff][..]).into(),
                FieldValue::Bytes(Bytes::from_static(b"\0\xff")),
            ),
            (b"\0\xff".into(), FieldValue::Bytes(Bytes::from_static(b"\0\xff"))),
            ([0u8, 0xff].into(), FieldValue::Bytes(Bytes::from_static(b"\0\xff"))),
            (
                vec![FieldValue::from(1), "two".into()].into(),
                FieldValue::Array(FieldArray(vec![FieldValue::I32(1), FieldValue::from("two")])),
            ),
            (FieldArray::new().into(), FieldValue::Array(FieldArray::default())),
            (FieldTable::new().into(), FieldValue::Table(FieldTable::default())),
            (None::<u8>.into(), FieldValue::Void),
            (Some(7u16).into(), FieldValue::U16(7)),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
            assert_eq!(got.tag(), want.tag());
        }
    }

    #[test]
    fn system_times_are_whole_seconds_since_the_epoch() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_999);
        assert_eq!(FieldValue::from(t), FieldValue::Timestamp(1_700_000_000));
        assert_eq!(FieldValue::from(UNIX_EPOCH), FieldValue::Timestamp(0));
        assert_eq!(
            FieldValue::from(UNIX_EPOCH - Duration::from_secs(1)),
            FieldValue::Timestamp(0)
        );
    }

    #[test]
    fn with_builds_and_replaces_in_place() {
        let key = String::from("b");
        let t = FieldTable::new()
            .with("a", 1)
            .with(&key, "x")
            .with(key.clone(), 2u8)
            .with(ShortStr::from_static("c"), FieldTable::new().with("inner", true))
            .with("a", 3i64);
        let entries: Vec<(&str, &FieldValue)> = t.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(
            entries,
            [
                ("a", &FieldValue::I64(3)),
                ("b", &FieldValue::U8(2)),
                ("c", &FieldValue::Table(FieldTable::new().with("inner", true))),
            ]
        );
    }

    #[test]
    fn try_with_refuses_long_keys() {
        let long = "k".repeat(256);
        assert_eq!(
            FieldTable::new().try_with(long.as_str(), 1),
            Err(ShortStrTooLong { len: 256 })
        );
        let ok = FieldTable::new().try_with("k".repeat(255), 1).unwrap();
        assert_eq!(ok.len(), 1);
        let err: crate::Error = FieldTable::new().try_with(&long, 1).unwrap_err().into();
        assert!(matches!(err, crate::Error::InvalidArgument(_)), "{err}");
    }

    #[test]
    #[should_panic(expected = "field-table key: short string of 256 bytes exceeds 255")]
    fn with_panics_on_long_keys() {
        let _ = FieldTable::new().with("k".repeat(256), 1);
    }

    #[test]
    #[should_panic(expected = "field-table key: short string of 300 bytes exceeds 255")]
    fn collect_panics_on_long_keys() {
        let _: FieldTable = [("k".repeat(300), 1)].into_iter().collect();
    }

    #[test]
    fn collect_keeps_every_pair_in_order() {
        let t: FieldTable = [("a", 1), ("b", 2), ("a", 3)].into_iter().collect();
        assert_eq!(t.len(), 3);
        assert_eq!(t.get("a"), Some(&FieldValue::I32(1)));
        let pairs: FieldTable = vec![(ShortStr::from_static("k"), FieldValue::Void)]
            .into_iter()
            .collect();
        assert_eq!(pairs.get("k"), Some(&FieldValue::Void));
        let arr: FieldArray = (1u8..=3).collect();
        assert_eq!(arr.0, [FieldValue::U8(1), FieldValue::U8(2), FieldValue::U8(3)]);
        assert_eq!(FieldArray::from(vec![FieldValue::Void]).0, [FieldValue::Void]);
    }

    #[test]
    fn macros_build_what_insert_builds_and_it_round_trips() {
        let built = crate::field_table! {
            "bool" => true,
            "i8" => -8i8,
            "u32" => 7u32,
            "f64" => -2.5,
            "dec" => Decimal::new(5, -35_935),
            "text" => "héllo",
            "bytes" => b"\x00\x01",
            "when" => UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            "none" => None::<i32>,
            "list" => crate::field_array![1, "two", crate::field_array![false], crate::field_table! {"k" => "v"}],
            "nested" => crate::field_table! { "n" => 1, "n" => 2 },
        };
        let mut kv = FieldTable::new();
        kv.insert(ShortStr::from_static("k"), FieldValue::from("v"));
        let mut nested = FieldTable::new();
        nested.insert(ShortStr::from_static("n"), FieldValue::I32(2));
        let mut manual = FieldTable::new();
        for (k, v) in [
            ("bool", FieldValue::Bool(true)),
            ("i8", FieldValue::I8(-8)),
            ("u32", FieldValue::U32(7)),
            ("f64", FieldValue::F64(-2.5)),
            (
                "dec",
                FieldValue::Decimal(Decimal {
                    scale: 5,
                    value: -35_935,
                }),
            ),
            ("text", FieldValue::LongStr(Bytes::from("héllo"))),
            ("bytes", FieldValue::Bytes(Bytes::from_static(&[0, 1]))),
            ("when", FieldValue::Timestamp(1_700_000_000)),
            ("none", FieldValue::Void),
            (
                "list",
                FieldValue::Array(FieldArray(vec![
                    FieldValue::I32(1),
                    FieldValue::from("two"),
                    FieldValue::Array(FieldArray(vec![FieldValue::Bool(false)])),
                    FieldValue::Table(kv),
                ])),
            ),
            ("nested", FieldValue::Table(nested)),
        ] {
            manual.insert(ShortStr::try_from(k).unwrap(), v);
        }
        assert_eq!(built, manual);
        let mut buf = BytesMut::new();
        encode_table(&built, &mut buf);
        assert_eq!(parse_table(&buf.freeze()), Ok(built));

        assert_eq!(crate::field_table! {}, FieldTable::new());
        assert_eq!(crate::field_array![], FieldArray::new());
        assert_eq!(crate::field_table! { "k" => 1, }.len(), 1);
        assert_eq!(crate::field_array![1u8,].0, [FieldValue::U8(1)]);
    }
}
