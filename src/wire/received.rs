//! [`Properties`]: a received message's properties, checked when the header frame is
//! decoded and built into [`BasicProperties`] on first read.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};

use super::BasicProperties;

/// Wire bytes checked when they were decoded, built into a `T` on first read: the one
/// mechanism behind [`Properties`] and a decoded [`FieldTable`](super::FieldTable).
///
/// Unchanged, the bytes are the value's encoding; [`get_mut`](Self::get_mut) drops them,
/// since the caller may change the value.
pub(crate) struct Received<T> {
    /// The checked wire bytes; `None` for a value built in code, changed since, or empty.
    raw: Option<Bytes>,
    /// The value; set from the start when built in code, on first read otherwise.
    built: OnceLock<T>,
}

/// Builds a value from wire bytes that its decoder's checking pass accepted.
pub(crate) trait BuildChecked: Default {
    /// Reads `raw` without checking it again.
    fn build_checked(raw: &Bytes) -> Self;
}

impl<T: BuildChecked> Received<T> {
    /// A value over wire bytes that were checked.
    pub(crate) fn checked(raw: Bytes) -> Self {
        Received {
            raw: Some(raw),
            built: OnceLock::new(),
        }
    }

    /// A value built in code.
    pub(crate) fn built(value: T) -> Self {
        Received {
            raw: None,
            built: OnceLock::from(value),
        }
    }

    /// The checked wire bytes, while the value is unchanged.
    pub(crate) fn raw(&self) -> Option<&Bytes> {
        self.raw.as_ref()
    }

    pub(crate) fn get(&self) -> &T {
        self.built
            .get_or_init(|| self.raw.as_ref().map(T::build_checked).unwrap_or_default())
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.get();
        self.raw = None;
        self.built.get_mut().expect("get() built it")
    }

    pub(crate) fn into_inner(mut self) -> T {
        self.get();
        self.built.take().expect("get() built it")
    }

    /// Equal as values; two decoded from the same bytes without being built.
    pub(crate) fn eq_by(&self, other: &Self, eq: impl FnOnce(&T, &T) -> bool) -> bool {
        match (&self.raw, &other.raw) {
            (Some(a), Some(b)) if a == b => true,
            _ => eq(self.get(), other.get()),
        }
    }
}

impl<T> Default for Received<T> {
    fn default() -> Self {
        Received {
            raw: None,
            built: OnceLock::new(),
        }
    }
}

impl<T: Clone> Clone for Received<T> {
    fn clone(&self) -> Self {
        // A copy shares the wire bytes, and the value when it was built already.
        Received {
            raw: self.raw.clone(),
            built: self.built.clone(),
        }
    }
}

impl BuildChecked for Box<BasicProperties> {
    fn build_checked(raw: &Bytes) -> Self {
        let mut built = Box::<BasicProperties>::default();
        let decoded = built.decode_checked_into(raw, raw);
        debug_assert!(matches!(decoded, Ok(([], ()))), "checked properties failed to build");
        built
    }
}

/// The properties of a received message (or of a content header), readable as
/// [`BasicProperties`] through `Deref`: `delivery.properties.content_type`.
///
/// Decoding only checks them; they are built on first read, so a consumer that never
/// looks at a message's properties costs neither the building nor an allocation, and
/// unchanged properties are written back as the bytes they came in.
#[derive(Default, Clone)]
pub struct Properties(Received<Box<BasicProperties>>);

impl Properties {
    /// Properties over wire bytes that [`BasicProperties::check`] accepted.
    pub(crate) fn from_checked(raw: Bytes) -> Self {
        Properties(Received::checked(raw))
    }

    /// The properties as an owned value.
    pub fn into_inner(self) -> BasicProperties {
        *self.0.into_inner()
    }

    /// Appends the flags word and the present properties.
    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        match self.0.raw() {
            // Received and unchanged: the bytes they came in are their encoding.
            Some(raw) => buf.extend_from_slice(raw),
            None => self.0.get().encode(buf),
        }
    }
}

impl Deref for Properties {
    type Target = BasicProperties;

    fn deref(&self) -> &BasicProperties {
        self.0.get()
    }
}

impl DerefMut for Properties {
    fn deref_mut(&mut self) -> &mut BasicProperties {
        self.0.get_mut()
    }
}

impl From<BasicProperties> for Properties {
    fn from(properties: BasicProperties) -> Self {
        Properties::from(Box::new(properties))
    }
}

impl From<Box<BasicProperties>> for Properties {
    fn from(properties: Box<BasicProperties>) -> Self {
        Properties(Received::built(properties))
    }
}

/// Properties compare as [`BasicProperties`]. Two decoded from the same bytes are equal
/// without being built.
impl PartialEq for Properties {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_by(&other.0, |a, b| a == b)
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::wire::{ContentHeader, FieldTable, Frame, WireError, encode_header};

    fn header_frame(properties: impl Into<Properties>) -> BytesMut {
        let header = ContentHeader {
            class_id: 60,
            body_size: 5,
            properties: properties.into(),
        };
        let mut buf = BytesMut::new();
        encode_header(1, &header, &mut buf);
        buf
    }

    fn decoded(mut frame: BytesMut) -> Result<ContentHeader, WireError> {
        match Frame::parse(&mut frame, 0)? {
            Some(Frame::Header { header, .. }) => Ok(header),
            other => panic!("not a header frame: {other:?}"),
        }
    }

    fn sample() -> BasicProperties {
        BasicProperties::builder()
            .content_type("application/json")
            .correlation_id("c-1")
            .persistent()
            .header("x-retries", 2)
            .header("x-route", FieldTable::new().with("zone", "eu"))
            .build()
            .unwrap()
    }

    #[test]
    fn received_properties_read_like_built_ones_and_are_written_back_unchanged() {
        let wire = header_frame(sample());
        let header = decoded(wire.clone()).unwrap();
        assert_eq!(*header.properties, sample());
        assert_eq!(header.properties.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(header.properties.delivery_mode, Some(2));
        assert_eq!(format!("{:?}", header.properties), format!("{:?}", sample()));
        assert_eq!(header.properties.clone().into_inner(), sample());

        let mut again = BytesMut::new();
        encode_header(1, &header, &mut again);
        assert_eq!(again, wire);
        // A copy shares the bytes, and reads the same.
        let copy = header.clone();
        assert_eq!(copy, header);
        assert_eq!(copy.properties.content_type.as_deref(), Some("application/json"));
    }

    #[test]
    fn changed_properties_are_written_as_changed() {
        let mut header = decoded(header_frame(sample())).unwrap();
        header.properties.correlation_id = None;
        header.properties.priority = Some(9);
        let reread = decoded({
            let mut buf = BytesMut::new();
            encode_header(1, &header, &mut buf);
            buf
        })
        .unwrap();
        let expected = BasicProperties {
            correlation_id: None,
            priority: Some(9),
            ..sample()
        };
        assert_eq!(*reread.properties, expected);
        assert_ne!(*reread.properties, sample());
    }

    #[test]
    fn empty_properties_keep_no_bytes_and_read_as_default() {
        let header = decoded(header_frame(BasicProperties::default())).unwrap();
        assert!(header.properties.0.raw().is_none());
        assert_eq!(*header.properties, BasicProperties::default());
        assert_eq!(header.properties.into_inner(), BasicProperties::default());
    }

    #[test]
    fn every_fault_in_the_properties_is_found_when_the_header_is_decoded() {
        // The header frame of `sample()`; its properties start after class, weight and
        // body size (7 + 12 bytes in): flags, then content-type's length and text.
        let good = header_frame(sample());
        let at = 7 + 12;
        let mut bad_text = good.clone();
        bad_text[at + 3] = 0xff; // inside "application/json"
        assert_eq!(decoded(bad_text).unwrap_err(), WireError::InvalidUtf8);

        let mut bad_flags = good.clone();
        bad_flags[at + 1] |= 0x01; // an undefined property bit
        assert!(matches!(decoded(bad_flags), Err(WireError::BadPropertyFlags { .. })));

        // A table value with an unknown type tag, deep in the headers.
        let tag = good.windows(5).position(|w| w == b"zoneS").expect("the nested value") + 4;
        let mut bad_table = good.clone();
        bad_table[tag] = b'Z';
        assert_eq!(
            decoded(bad_table).unwrap_err(),
            WireError::UnknownFieldType { tag: b'Z' }
        );
    }
}
