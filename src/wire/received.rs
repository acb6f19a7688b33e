//! [`Properties`]: a received message's properties, checked when the header frame is
//! decoded and built into [`BasicProperties`] on first read.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};

use super::BasicProperties;

/// The properties of a received message (or of a content header), readable as
/// [`BasicProperties`] through `Deref`: `delivery.properties.content_type`.
///
/// Decoding only checks them; they are built on first read, so a consumer that never
/// looks at a message's properties costs neither the building nor an allocation, and
/// unchanged properties are written back as the bytes they came in.
#[derive(Default)]
pub struct Properties {
    /// The flags word and the fields as received and checked; `None` for properties
    /// built in code, changed since, or received empty.
    raw: Option<Bytes>,
    /// The properties; set from the start when built in code, on first read otherwise.
    built: OnceLock<Box<BasicProperties>>,
}

impl Properties {
    /// Properties over wire bytes that [`BasicProperties::check`] accepted.
    pub(crate) fn from_checked(raw: Bytes) -> Self {
        Properties {
            raw: Some(raw),
            built: OnceLock::new(),
        }
    }

    /// The properties as an owned value.
    pub fn into_inner(mut self) -> BasicProperties {
        self.built();
        *self.built.take().unwrap_or_default()
    }

    fn built(&self) -> &BasicProperties {
        self.built.get_or_init(|| {
            let mut built = Box::<BasicProperties>::default();
            if let Some(raw) = &self.raw {
                let decoded = built.decode_checked_into(raw, raw);
                debug_assert!(matches!(decoded, Ok(([], ()))), "checked properties failed to build");
            }
            built
        })
    }

    /// Appends the flags word and the present properties.
    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        match &self.raw {
            // Received and unchanged: the bytes they came in are their encoding.
            Some(raw) => buf.extend_from_slice(raw),
            None => self.built().encode(buf),
        }
    }
}

impl Deref for Properties {
    type Target = BasicProperties;

    fn deref(&self) -> &BasicProperties {
        self.built()
    }
}

impl DerefMut for Properties {
    fn deref_mut(&mut self) -> &mut BasicProperties {
        self.built();
        // The wire bytes no longer describe what the caller may change.
        self.raw = None;
        self.built.get_mut().expect("built() set them")
    }
}

impl From<BasicProperties> for Properties {
    fn from(properties: BasicProperties) -> Self {
        Properties::from(Box::new(properties))
    }
}

impl From<Box<BasicProperties>> for Properties {
    fn from(properties: Box<BasicProperties>) -> Self {
        Properties {
            raw: None,
            built: OnceLock::from(properties),
        }
    }
}

impl Clone for Properties {
    fn clone(&self) -> Self {
        // A copy shares the wire bytes, and the built properties when they were built.
        Properties {
            raw: self.raw.clone(),
            built: self.built.clone(),
        }
    }
}

/// Properties compare as [`BasicProperties`]. Two decoded from the same bytes are equal
/// without being built.
impl PartialEq for Properties {
    fn eq(&self, other: &Self) -> bool {
        match (&self.raw, &other.raw) {
            (Some(a), Some(b)) if a == b => true,
            _ => **self == **other,
        }
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
        assert!(header.properties.raw.is_none());
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
        assert_eq!(decoded(bad_table).unwrap_err(), WireError::UnknownFieldType { tag: b'Z' });
    }
}
