//! Decoding errors, each tied to the reply code the connection must close with.

use std::fmt;

use super::ReplyCode;

/// Why bytes from the peer could not be decoded.
///
/// Every variant maps to the AMQP reply code (see [`WireError::reply_code`]) that a
/// connection receiving such bytes must close with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The 8-byte protocol header was not `AMQP 0 0 9 1`.
    BadProtocolHeader {
        /// The bytes received.
        found: [u8; 8],
    },
    /// A frame type other than method, header, body or heartbeat.
    UnknownFrameType {
        /// The frame type octet.
        frame_type: u8,
    },
    /// A frame larger than the negotiated `frame_max`.
    FrameTooLarge {
        /// Total frame size (header, payload and frame-end).
        size: u64,
        /// The limit in force.
        max: u32,
    },
    /// The octet after the payload was not the frame-end marker (0xCE).
    BadFrameEnd {
        /// The octet found.
        found: u8,
    },
    /// A heartbeat frame on a channel other than 0, or with a payload.
    BadHeartbeat,
    /// A method frame for a class and method this client does not know.
    UnknownMethod {
        /// The class id.
        class_id: u16,
        /// The method id.
        method_id: u16,
    },
    /// A field or length ran past the end of the frame payload.
    Truncated,
    /// The payload had bytes left after its last field.
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// A short string or field-table key was not UTF-8.
    InvalidUtf8,
    /// A field-table value had an unknown type tag.
    UnknownFieldType {
        /// The tag octet.
        tag: u8,
    },
    /// Field tables or arrays nested deeper than [`MAX_NESTING`](super::MAX_NESTING).
    NestingTooDeep,
    /// A bit was set in a packed-bits octet past the last defined bit.
    BadBits {
        /// The octet received.
        bits: u8,
    },
    /// The content-header property flags used the continuation bit or an undefined flag.
    BadPropertyFlags {
        /// The flags word received.
        flags: u16,
    },
    /// A content header whose weight field was not zero.
    BadContentWeight {
        /// The weight received.
        weight: u16,
    },
}

impl WireError {
    /// A field or length ran past the end of the payload.
    pub const fn truncated() -> Self {
        WireError::Truncated
    }

    /// True when the frame boundaries are lost (bad type, size or frame-end): parsing
    /// cannot go on. Other errors lie inside a well-framed payload, which
    /// [`Frame::parse`](super::Frame::parse) consumes, so the next frame can still be read.
    pub fn is_framing_error(&self) -> bool {
        matches!(
            self,
            WireError::BadProtocolHeader { .. }
                | WireError::UnknownFrameType { .. }
                | WireError::FrameTooLarge { .. }
                | WireError::BadFrameEnd { .. }
        )
    }

    /// The reply code a connection must close with on this error.
    pub fn reply_code(&self) -> ReplyCode {
        use WireError::*;
        match self {
            BadProtocolHeader { .. }
            | UnknownFrameType { .. }
            | FrameTooLarge { .. }
            | BadFrameEnd { .. }
            | BadHeartbeat => ReplyCode::FRAME_ERROR,
            UnknownMethod { .. } => ReplyCode::COMMAND_INVALID,
            Truncated
            | TrailingBytes { .. }
            | InvalidUtf8
            | UnknownFieldType { .. }
            | NestingTooDeep
            | BadBits { .. }
            | BadPropertyFlags { .. }
            | BadContentWeight { .. } => ReplyCode::SYNTAX_ERROR,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use WireError::*;
        match self {
            BadProtocolHeader { found } => write!(f, "bad protocol header {found:02x?}"),
            UnknownFrameType { frame_type } => write!(f, "unknown frame type {frame_type}"),
            FrameTooLarge { size, max } => write!(f, "frame of {size} bytes exceeds frame_max {max}"),
            BadFrameEnd { found } => write!(f, "frame end octet was {found:#04x}, expected 0xce"),
            BadHeartbeat => f.write_str("heartbeat frame with a channel or payload"),
            UnknownMethod { class_id, method_id } => write!(f, "unknown method {class_id}.{method_id}"),
            Truncated => f.write_str("a field runs past the end of the frame"),
            TrailingBytes { count } => write!(f, "{count} bytes left after the last field"),
            InvalidUtf8 => f.write_str("short string is not UTF-8"),
            UnknownFieldType { tag } => write!(f, "unknown field-table type tag {tag:#04x}"),
            NestingTooDeep => f.write_str("field tables nested too deeply"),
            BadBits { bits } => write!(f, "undefined bits set in {bits:#010b}"),
            BadPropertyFlags { flags } => write!(f, "undefined property flags in {flags:#06x}"),
            BadContentWeight { weight } => write!(f, "content header weight {weight}, expected 0"),
        }
    }
}

impl std::error::Error for WireError {}

impl<'a> nom::error::ParseError<&'a [u8]> for WireError {
    fn from_error_kind(_input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        WireError::Truncated
    }

    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}
