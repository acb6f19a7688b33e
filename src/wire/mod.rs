//! The AMQP 0-9-1 wire format: a pure codec with no IO.
//!
//! - [`Frame::parse`] takes a complete frame off a read buffer, reports that more bytes
//!   are needed, or returns a typed [`WireError`] naming the reply code to close with.
//!   It never panics, whatever the input. Body payloads and strings share the buffer.
//! - [`FrameRef::parse`] reads a frame in place from a `&[u8]`, with the same checks:
//!   strings, tables and bodies are views of the input, with no reference count.
//! - [`Frame::encode`], [`encode_method`] and [`encode_content`] append to a `BytesMut`;
//!   [`encode_content_shared`] puts a body into an [`Output`] by reference, not copied.
//! - Methods, properties and constants are generated from `spec/amqp0-9-1.xml`.

mod borrowed;
pub mod codec;
mod convert;
mod error;
mod frame;
mod output;
mod properties;
mod received;
mod spec;
mod types;

pub use borrowed::{ContentHeaderRef, FrameRef, PropertiesRef, TableRef};
pub use codec::{MAX_NESTING, encode_table, parse_table};
pub use error::WireError;
pub(crate) use frame::encode_publish_to;
pub use frame::{
    ACK_FRAME_LEN, ContentHeader, FRAME_OVERHEAD, Frame, PROTOCOL_HEADER, encode_body, encode_content,
    encode_content_shared, encode_header, encode_method, encode_publish, extend_ack, parse_protocol_header,
};
pub use output::{Mark, Output, Span};
pub use properties::{InvalidProperty, PropertiesBuilder};
pub use received::Properties;
pub use spec::*;
pub use types::{
    Decimal, ErrorSeverity, FieldArray, FieldRef, FieldTable, FieldValue, MethodId, MethodInfo, ReplyCode, ShortStr,
    ShortStrTooLong,
};
