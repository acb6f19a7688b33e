//! Frames read in place: [`FrameRef::parse`] checks exactly what [`Frame::parse`]
//! checks, and hands out views of the input instead of owned values, so a frame costs
//! no reference count and no allocation. For whoever reads frames from a `&[u8]`
//! (a capture, a proxy, a fuzzer) or needs only part of each; [`FrameRef::into_owned`]
//! gives the [`Frame`] that [`Frame::parse`] would have.

use bytes::Bytes;

use super::frame::{PROPERTIES_AT, check_frame_end, check_header, frame_len};
use super::{
    ContentHeader, FRAME_BODY, FRAME_HEADER, FRAME_METHOD, FieldTable, Frame, MethodRef, Properties, WireError,
};

/// One AMQP frame read in place (see [`Frame`] for the owned one).
#[derive(Debug, Clone, PartialEq)]
pub enum FrameRef<'a> {
    /// A method frame.
    Method {
        /// The channel.
        channel: u16,
        /// The method and its arguments.
        method: MethodRef<'a>,
    },
    /// A content header frame.
    Header {
        /// The channel.
        channel: u16,
        /// Class, body size and properties.
        header: ContentHeaderRef<'a>,
    },
    /// A content body frame.
    Body {
        /// The channel.
        channel: u16,
        /// Body bytes.
        payload: &'a [u8],
    },
    /// A heartbeat frame (always channel 0).
    Heartbeat,
}

/// A content header read in place (see [`ContentHeader`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContentHeaderRef<'a> {
    /// Class of the method the content belongs to (60, basic).
    pub class_id: u16,
    /// Total size of the body frames that follow.
    pub body_size: u64,
    /// The message properties, checked.
    pub properties: PropertiesRef<'a>,
}

/// A content header's properties read in place: the flags word and the present
/// properties, checked as [`Frame::parse`] checks them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PropertiesRef<'a>(&'a [u8]);

/// A field table read in place: its entries' wire bytes, checked whole as a decoded
/// [`FieldTable`] is.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TableRef<'a>(&'a [u8]);

impl<'a> FrameRef<'a> {
    /// Reads the frame at the front of `input`: the frame and its length in bytes, or
    /// `Ok(None)` when `input` holds no complete frame yet. `max_frame_size` is the
    /// negotiated `frame_max` (whole frame, 0 for no limit). Refuses what
    /// [`Frame::parse`] refuses, with the same error.
    pub fn parse(input: &'a [u8], max_frame_size: u32) -> Result<Option<(FrameRef<'a>, usize)>, WireError> {
        let Some(len) = frame_len(input, max_frame_size)? else {
            return Ok(None);
        };
        let frame = &input[..len];
        check_frame_end(frame[len - 1])?;
        let channel = u16::from_be_bytes([frame[1], frame[2]]);
        let payload = &frame[7..len - 1];
        let parsed = match frame[0] {
            FRAME_METHOD => FrameRef::Method {
                channel,
                method: MethodRef::decode(payload)?,
            },
            FRAME_HEADER => FrameRef::Header {
                channel,
                header: ContentHeaderRef::decode(frame)?,
            },
            FRAME_BODY => FrameRef::Body { channel, payload },
            _ if channel != 0 || !payload.is_empty() => return Err(WireError::BadHeartbeat),
            _ => FrameRef::Heartbeat,
        };
        Ok(Some((parsed, len)))
    }

    /// The channel the frame belongs to.
    pub fn channel(&self) -> u16 {
        match self {
            FrameRef::Method { channel, .. } | FrameRef::Header { channel, .. } | FrameRef::Body { channel, .. } => {
                *channel
            }
            FrameRef::Heartbeat => 0,
        }
    }

    /// The owned frame (strings, tables, properties and body copied).
    pub fn into_owned(self) -> Frame {
        match self {
            FrameRef::Method { channel, method } => Frame::Method {
                channel,
                method: method.into_owned(),
            },
            FrameRef::Header { channel, header } => Frame::Header {
                channel,
                header: header.into_owned(),
            },
            FrameRef::Body { channel, payload } => Frame::Body {
                channel,
                payload: Bytes::copy_from_slice(payload),
            },
            FrameRef::Heartbeat => Frame::Heartbeat,
        }
    }
}

impl<'a> ContentHeaderRef<'a> {
    /// Decodes a content header frame whose length and frame-end were checked.
    fn decode(frame: &'a [u8]) -> Result<Self, WireError> {
        let (class_id, body_size, checked_len) = check_header(frame)?;
        Ok(ContentHeaderRef {
            class_id,
            body_size,
            properties: PropertiesRef(&frame[PROPERTIES_AT..PROPERTIES_AT + checked_len]),
        })
    }

    /// The owned content header (its properties copied).
    pub fn into_owned(self) -> ContentHeader {
        ContentHeader {
            class_id: self.class_id,
            body_size: self.body_size,
            properties: self.properties.into_owned(),
        }
    }
}

impl<'a> PropertiesRef<'a> {
    /// The flags word and the present properties, as on the wire.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The owned properties (copied; built on first read, as a decoded frame's are).
    pub fn into_owned(self) -> Properties {
        if self.0 == [0, 0] {
            Properties::default()
        } else {
            Properties::from_checked(Bytes::copy_from_slice(self.0))
        }
    }
}

impl<'a> TableRef<'a> {
    /// A table over entry bytes that [`codec`](super::codec) has checked.
    pub(crate) fn from_checked(raw: &'a [u8]) -> Self {
        TableRef(raw)
    }

    /// The entries as on the wire (without the length prefix).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The owned table (copied; its entries built on first read, as a decoded one's).
    pub fn into_owned(self) -> FieldTable {
        FieldTable::from_validated(Bytes::copy_from_slice(self.0))
    }
}
