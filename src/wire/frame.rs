//! Frames: parsing from a read buffer and encoding into a write buffer.
//!
//! A frame is `type:u8 channel:u16 size:u32 payload[size] 0xCE`. [`Frame::parse`] takes
//! complete frames off the front of a `BytesMut`; "need more bytes" is `Ok(None)`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::codec as c;
use super::output::Output;
use super::{
    BasicAck, BasicProperties, BasicPublish, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD,
    Method, Properties, WireError,
};

/// The protocol header a client sends first: `AMQP 0 0 9 1`.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// Bytes of a frame around its payload: 7 of header and 1 of frame-end.
pub const FRAME_OVERHEAD: usize = 8;

// A frame is moved several times on its way from the parser to proto; at 128 bytes or
// less the compiler moves it inline instead of calling `memcpy`. A field table is a
// pointer and received properties are their wire bytes (`Properties`, 48 bytes) for this.
const _: () = assert!(cfg!(not(target_pointer_width = "64")) || size_of::<Frame>() <= 128);

/// One AMQP frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A method frame.
    Method {
        /// The channel.
        channel: u16,
        /// The method and its arguments.
        method: Method,
    },
    /// A content header frame.
    Header {
        /// The channel.
        channel: u16,
        /// Class, body size and properties.
        header: ContentHeader,
    },
    /// A content body frame; the payload shares the read buffer.
    Body {
        /// The channel.
        channel: u16,
        /// Body bytes.
        payload: Bytes,
    },
    /// A heartbeat frame (always channel 0).
    Heartbeat,
}

/// A content header: the class, the total body size and the properties.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContentHeader {
    /// Class of the method the content belongs to (60, basic).
    pub class_id: u16,
    /// Total size of the body frames that follow.
    pub body_size: u64,
    /// Message properties: a received header's are checked, and built on first read.
    pub properties: Properties,
}

impl Frame {
    /// The channel the frame belongs to.
    pub fn channel(&self) -> u16 {
        match self {
            Frame::Method { channel, .. } | Frame::Header { channel, .. } | Frame::Body { channel, .. } => *channel,
            Frame::Heartbeat => 0,
        }
    }

    /// Takes one complete frame off the front of `buf`.
    ///
    /// `Ok(None)` means `buf` holds no complete frame yet and nothing was consumed.
    /// `max_frame_size` is the negotiated `frame_max` (whole frame, 0 for no limit).
    /// On an error the connection must close with [`WireError::reply_code`]. Framing
    /// errors ([`WireError::is_framing_error`]) leave `buf` as it was, since frame
    /// boundaries are lost; errors inside a well-framed payload consume exactly that
    /// frame, so a closing connection can still read the peer's close-ok after it.
    pub fn parse(buf: &mut BytesMut, max_frame_size: u32) -> Result<Option<Frame>, WireError> {
        let Some(len) = frame_len(buf, max_frame_size)? else {
            return Ok(None);
        };
        // Check before splitting, so an error leaves the buffer intact.
        check_frame_end(buf[len - 1])?;
        if buf[0] == FRAME_BODY {
            // Body frames are most of the traffic: split the payload out directly.
            let channel = u16::from_be_bytes([buf[1], buf[2]]);
            let mut frame = buf.split_to(len);
            frame.advance(7);
            frame.truncate(len - FRAME_OVERHEAD);
            return Ok(Some(Frame::Body {
                channel,
                payload: frame.freeze(),
            }));
        }
        decode_checked(buf.split_to(len).freeze()).map(Some)
    }

    /// Parses one frame at the front of `src` without consuming it: the frame and its
    /// length in bytes, or `Ok(None)` when `src` is incomplete.
    pub fn parse_bytes(src: &Bytes, max_frame_size: u32) -> Result<Option<(Frame, usize)>, WireError> {
        let Some(len) = frame_len(src, max_frame_size)? else {
            return Ok(None);
        };
        check_frame_end(src[len - 1])?;
        decode_checked(src.slice(..len)).map(|f| Some((f, len)))
    }

    /// Appends the encoded frame to `buf`. Body frames are written as they are: use
    /// [`encode_content`] to split a body by `frame_max`.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Frame::Method { channel, method } => encode_method(*channel, method, buf),
            Frame::Header { channel, header } => encode_header(*channel, header, buf),
            Frame::Body { channel, payload } => encode_body(*channel, payload, buf),
            Frame::Heartbeat => buf.put_slice(&[FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]),
        }
    }
}

/// The total length of the frame at the front of `buf`, once all of it is there.
#[inline]
pub(super) fn frame_len(buf: &[u8], max_frame_size: u32) -> Result<Option<usize>, WireError> {
    let Some(head) = buf.get(..7) else {
        return Ok(None);
    };
    let frame_type = head[0];
    if !matches!(frame_type, FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT) {
        return Err(WireError::UnknownFrameType { frame_type });
    }
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
    let total = u64::from(size) + FRAME_OVERHEAD as u64;
    if max_frame_size != 0 && total > u64::from(max_frame_size) {
        return Err(WireError::FrameTooLarge {
            size: total,
            max: max_frame_size,
        });
    }
    // `total` fits in usize on every platform with at least 64-bit or when the limit applies.
    let Ok(total) = usize::try_from(total) else {
        return Err(WireError::FrameTooLarge {
            size: total,
            max: max_frame_size,
        });
    };
    Ok((buf.len() >= total).then_some(total))
}

#[inline]
pub(super) fn check_frame_end(found: u8) -> Result<(), WireError> {
    if found == FRAME_END {
        Ok(())
    } else {
        Err(WireError::BadFrameEnd { found })
    }
}

/// Decodes a frame whose length and frame-end were checked; `frame` is exactly one frame.
/// A header's properties and a body keep `frame`'s own reference to the read buffer
/// rather than taking another (reference counts are atomic).
fn decode_checked(mut frame: Bytes) -> Result<Frame, WireError> {
    let channel = u16::from_be_bytes([frame[1], frame[2]]);
    let payload = &frame[7..frame.len() - 1];
    match frame[0] {
        FRAME_METHOD => Ok(Frame::Method {
            channel,
            method: Method::decode(&frame, payload)?,
        }),
        FRAME_HEADER => Ok(Frame::Header {
            channel,
            header: decode_header(frame)?,
        }),
        FRAME_BODY => {
            frame.truncate(frame.len() - 1);
            frame.advance(7);
            Ok(Frame::Body {
                channel,
                payload: frame,
            })
        }
        _ if channel != 0 || !payload.is_empty() => Err(WireError::BadHeartbeat),
        _ => Ok(Frame::Heartbeat),
    }
}

/// Where a content header's properties start in its frame: after the frame header (7),
/// class id (2), weight (2) and body size (8).
pub(super) const PROPERTIES_AT: usize = 19;

/// Checks a content header frame whose length and frame-end were checked: its class id,
/// body size, and the length of its properties (from [`PROPERTIES_AT`]).
pub(super) fn check_header(frame: &[u8]) -> Result<(u16, u64, usize), WireError> {
    let payload = &frame[7..frame.len() - 1];
    let parsed = (|| {
        let (i, class_id) = c::short(payload)?;
        let (i, weight) = c::short(i)?;
        if weight != 0 {
            return Err(nom::Err::Failure(WireError::BadContentWeight { weight }));
        }
        let (i, body_size) = c::longlong(i)?;
        let (rest, ()) = BasicProperties::check(i)?;
        Ok((rest, (class_id, body_size, i.len() - rest.len())))
    })();
    c::exact(parsed)
}

fn decode_header(mut frame: Bytes) -> Result<ContentHeader, WireError> {
    let (class_id, body_size, checked_len) = check_header(&frame)?;
    // No property present (a flags word of 0) needs no bytes kept.
    let properties = if frame[PROPERTIES_AT..PROPERTIES_AT + checked_len] == [0, 0] {
        Properties::default()
    } else {
        frame.truncate(PROPERTIES_AT + checked_len);
        frame.advance(PROPERTIES_AT);
        Properties::from_checked(frame)
    };
    Ok(ContentHeader {
        class_id,
        body_size,
        properties,
    })
}

/// Writes a frame header with a zero size, runs `payload`, then patches the size in.
#[inline]
pub(super) fn framed(buf: &mut BytesMut, frame_type: u8, channel: u16, payload: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    let [c0, c1] = channel.to_be_bytes();
    // The header in one write (one capacity check); the size is patched in below.
    buf.put_slice(&[frame_type, c0, c1, 0, 0, 0, 0]);
    payload(buf);
    let size = (buf.len() - start - 7) as u32;
    buf[start + 3..start + 7].copy_from_slice(&size.to_be_bytes());
    buf.put_u8(FRAME_END);
}

/// Appends a method frame.
#[inline]
pub fn encode_method(channel: u16, method: &Method, buf: &mut BytesMut) {
    method.encode_frame(channel, buf);
}

/// Appends a `basic.publish` method frame straight from `args`: no clone of its
/// strings, so no allocation per publish.
#[inline]
pub fn encode_publish(channel: u16, args: &BasicPublish, buf: &mut BytesMut) {
    args.encode_frame(channel, buf);
}

/// Appends a `basic.publish` method frame (not `immediate`) to `exchange` with
/// `routing_key`, from their bytes: UTF-8 and at most 255 bytes each, which the caller
/// checked (a longer name is cut to its length's low byte, breaking the frame).
#[inline]
pub(crate) fn encode_publish_to(
    channel: u16,
    exchange: &[u8],
    routing_key: &[u8],
    mandatory: bool,
    buf: &mut BytesMut,
) {
    publish_frame(channel, exchange, routing_key, u8::from(mandatory), buf);
}

/// `basic.publish` with its flag bits (`mandatory` 1, `immediate` 2), written as the
/// generated `encode_frame`s are: the size first, each fixed run in one write.
#[inline]
fn publish_frame(channel: u16, exchange: &[u8], routing_key: &[u8], bits: u8, buf: &mut BytesMut) {
    debug_assert!(exchange.len() <= 255 && routing_key.len() <= 255);
    // Method id (4), ticket (2), two string lengths, the bits.
    let size = 9 + exchange.len() + routing_key.len();
    buf.reserve(size + FRAME_OVERHEAD);
    let [c0, c1] = channel.to_be_bytes();
    let [s0, s1, s2, s3] = (size as u32).to_be_bytes();
    let [k0, k1] = BasicPublish::ID.class_id.to_be_bytes();
    let [m0, m1] = BasicPublish::ID.method_id.to_be_bytes();
    buf.put_slice(&[
        FRAME_METHOD,
        c0,
        c1,
        s0,
        s1,
        s2,
        s3,
        k0,
        k1,
        m0,
        m1,
        0,
        0,
        exchange.len() as u8,
    ]);
    buf.put_slice(exchange);
    buf.put_u8(routing_key.len() as u8);
    buf.put_slice(routing_key);
    buf.put_slice(&[bits, FRAME_END]);
}

/// Bytes of a `basic.ack` frame: header (7), class and method (4), delivery tag (8),
/// flags (1), frame end (1).
pub const ACK_FRAME_LEN: usize = 21;

/// Turns the `basic.ack` frame that `frame` holds into `basic.ack(tag, multiple)`, when
/// it is an ack on `channel` of a tag below `tag`; returns whether it did. The caller
/// knows that the ack settled everything up to its own tag, so the extended frame
/// settles what both would have.
pub fn extend_ack(frame: &mut [u8], channel: u16, tag: u64) -> bool {
    let [
        b,
        c0,
        c1,
        0,
        0,
        0,
        13,
        k0,
        k1,
        m0,
        m1,
        t0,
        t1,
        t2,
        t3,
        t4,
        t5,
        t6,
        t7,
        _,
        end,
    ] = *frame
    else {
        return false;
    };
    let is_ack = b == FRAME_METHOD
        && end == FRAME_END
        && u16::from_be_bytes([c0, c1]) == channel
        && u16::from_be_bytes([k0, k1]) == BasicAck::ID.class_id
        && u16::from_be_bytes([m0, m1]) == BasicAck::ID.method_id;
    if !is_ack || u64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]) >= tag {
        return false;
    }
    frame[11..19].copy_from_slice(&tag.to_be_bytes());
    frame[19] = 1;
    true
}

/// Appends a content header frame.
#[inline]
pub fn encode_header(channel: u16, header: &ContentHeader, buf: &mut BytesMut) {
    framed(buf, FRAME_HEADER, channel, |buf| {
        put_header_head(buf, header.class_id, header.body_size);
        header.properties.encode(buf);
    });
}

/// Appends one body frame holding all of `payload`.
#[inline]
pub fn encode_body(channel: u16, payload: &[u8], buf: &mut BytesMut) {
    buf.reserve(payload.len() + FRAME_OVERHEAD);
    let [c0, c1] = channel.to_be_bytes();
    let [l0, l1, l2, l3] = (payload.len() as u32).to_be_bytes();
    buf.put_slice(&[FRAME_BODY, c0, c1, l0, l1, l2, l3]);
    buf.put_slice(payload);
    buf.put_u8(FRAME_END);
}

/// Appends a content header and the body split into frames of at most
/// `max_frame_size` bytes (0 for no limit). An empty body sends no body frame.
pub fn encode_content(
    channel: u16,
    properties: &BasicProperties,
    body: &[u8],
    max_frame_size: u32,
    buf: &mut BytesMut,
) {
    content_header(channel, properties, body.len(), buf);
    for part in body.chunks(body_chunk(max_frame_size)) {
        encode_body(channel, part, buf);
    }
}

/// [`encode_content`] without copying the body: each body frame is its header and
/// frame-end in `out`'s buffer with a slice of `body` between them, so the body goes to
/// the socket from the caller's own bytes.
pub fn encode_content_shared(
    channel: u16,
    properties: &BasicProperties,
    body: &Bytes,
    max_frame_size: u32,
    out: &mut Output,
) {
    content_header(channel, properties, body.len(), out.buf_mut());
    let chunk = body_chunk(max_frame_size);
    let mut at = 0;
    while at < body.len() {
        let end = body.len().min(at + chunk);
        let buf = out.buf_mut();
        buf.put_u8(FRAME_BODY);
        buf.put_u16(channel);
        buf.put_u32((end - at) as u32);
        out.push_shared(body.slice(at..end));
        out.buf_mut().put_u8(FRAME_END);
        at = end;
    }
}

/// The content header frame of a `basic` body of `body_len` bytes.
#[inline]
fn content_header(channel: u16, properties: &BasicProperties, body_len: usize, buf: &mut BytesMut) {
    framed(buf, FRAME_HEADER, channel, |buf| {
        put_header_head(buf, BasicProperties::CLASS_ID, body_len as u64);
        properties.encode(buf);
    });
}

/// Writes what a content header has before its properties: class id, weight (always 0)
/// and body size, in one write.
#[inline]
fn put_header_head(buf: &mut BytesMut, class_id: u16, body_size: u64) {
    let [k0, k1] = class_id.to_be_bytes();
    let [s0, s1, s2, s3, s4, s5, s6, s7] = body_size.to_be_bytes();
    buf.put_slice(&[k0, k1, 0, 0, s0, s1, s2, s3, s4, s5, s6, s7]);
}

/// The most body bytes one body frame carries under `max_frame_size` (0: no limit).
#[inline]
fn body_chunk(max_frame_size: u32) -> usize {
    match max_frame_size {
        0 => u32::MAX as usize,
        max => (max as usize).saturating_sub(FRAME_OVERHEAD).max(1),
    }
}

/// Checks the 8-byte protocol header at the front of `buf` (what a server sends back
/// when it refuses our version). `Ok(None)` when fewer than 8 bytes are there.
pub fn parse_protocol_header(buf: &[u8]) -> Result<Option<[u8; 8]>, WireError> {
    let Some(head) = buf.get(..8) else {
        return Ok(None);
    };
    let mut found = [0u8; 8];
    found.copy_from_slice(head);
    if found == PROTOCOL_HEADER {
        Ok(Some(found))
    } else {
        Err(WireError::BadProtocolHeader { found })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{BasicNack, ShortStr};

    fn ack_frame(channel: u16, tag: u64, multiple: bool) -> BytesMut {
        let mut buf = BytesMut::new();
        encode_method(
            channel,
            &Method::BasicAck(BasicAck {
                delivery_tag: tag,
                multiple,
            }),
            &mut buf,
        );
        buf
    }

    fn parse(buf: &BytesMut) -> Frame {
        Frame::parse(&mut buf.clone(), 0).unwrap().unwrap()
    }

    /// `method` framed from its field-by-field encoding (`Method::encode`), after `before`.
    fn field_by_field(channel: u16, method: &Method) -> BytesMut {
        let mut payload = BytesMut::new();
        method.encode(&mut payload);
        let mut frame = BytesMut::from(&b"before"[..]);
        frame.put_u8(FRAME_METHOD);
        frame.put_u16(channel);
        frame.put_u32(payload.len() as u32);
        frame.put_slice(&payload);
        frame.put_u8(FRAME_END);
        frame
    }

    #[test]
    fn encode_publish_is_the_field_by_field_encoding() {
        for (mandatory, immediate) in [(false, false), (true, false), (false, true), (true, true)] {
            let args = BasicPublish {
                exchange: ShortStr::try_from("ex").unwrap(),
                routing_key: ShortStr::try_from("key").unwrap(),
                mandatory,
                immediate,
            };
            let mut fast = BytesMut::from(&b"before"[..]);
            encode_publish(7, &args, &mut fast);
            assert_eq!(fast, field_by_field(7, &Method::BasicPublish(args)));
        }
    }

    #[test]
    fn encode_publish_to_is_the_field_by_field_encoding() {
        for (exchange, key, mandatory) in [("", "q", false), ("ex", "a.b.c", true), ("x", &*"k".repeat(255), false)] {
            let args = BasicPublish {
                exchange: ShortStr::try_from(exchange).unwrap(),
                routing_key: ShortStr::try_from(key).unwrap(),
                mandatory,
                immediate: false,
            };
            let mut fast = BytesMut::from(&b"before"[..]);
            encode_publish_to(7, exchange.as_bytes(), key.as_bytes(), mandatory, &mut fast);
            assert_eq!(fast, field_by_field(7, &Method::BasicPublish(args)));
        }
    }

    #[test]
    fn shared_content_is_the_copied_encoding() {
        let properties = BasicProperties {
            message_id: Some(ShortStr::try_from("m-1").unwrap()),
            ..Default::default()
        };
        let body = Bytes::from((0..=255u8).cycle().take(1000).collect::<Vec<u8>>());
        for (frame_max, len) in [(0, 1000), (4096, 1000), (108, 1000), (108, 100), (108, 0), (9, 3)] {
            let body = body.slice(..len);
            let mut copied = BytesMut::from(&b"before"[..]);
            encode_content(5, &properties, &body, frame_max, &mut copied);
            let mut shared = Output::new();
            shared.buf_mut().extend_from_slice(b"before");
            encode_content_shared(5, &properties, &body, frame_max, &mut shared);
            assert_eq!(shared.has_shared(), len > 0, "frame_max {frame_max}, {len} B");
            let mut sent = BytesMut::new();
            shared.copy_into(&mut sent);
            assert_eq!(sent, copied, "frame_max {frame_max}, {len} B");
        }
    }

    #[test]
    fn shared_body_frames_are_slices_of_the_body() {
        let body = Bytes::from(vec![9u8; 250]);
        let mut out = Output::new();
        encode_content_shared(1, &BasicProperties::default(), &body, 108, &mut out);
        let mut slices = [std::io::IoSlice::new(&[]); 16];
        let n = out.chunks_vectored(&mut slices);
        let inside = |s: &[u8]| {
            let (p, b) = (s.as_ptr() as usize, body.as_ptr() as usize);
            p >= b && p + s.len() <= b + body.len()
        };
        let bodies: Vec<usize> = slices[..n].iter().filter(|s| inside(s)).map(|s| s.len()).collect();
        assert_eq!(bodies, [100, 100, 50], "three body frames, each a slice of the body");
    }

    #[test]
    fn an_ack_extends_to_a_later_tag_with_multiple() {
        let mut frame = ack_frame(3, 10, false);
        assert_eq!(frame.len(), ACK_FRAME_LEN);
        assert!(extend_ack(&mut frame, 3, 12));
        let expected = Method::BasicAck(BasicAck {
            delivery_tag: 12,
            multiple: true,
        });
        assert_eq!(
            parse(&frame),
            Frame::Method {
                channel: 3,
                method: expected
            }
        );
    }

    #[test]
    fn only_an_earlier_ack_on_the_same_channel_extends() {
        for (mut frame, channel, tag, why) in [
            (ack_frame(3, 10, false), 3, 10, "same tag"),
            (ack_frame(3, 10, false), 3, 9, "lower tag"),
            (ack_frame(3, 10, false), 4, 12, "other channel"),
        ] {
            let before = frame.clone();
            assert!(!extend_ack(&mut frame, channel, tag), "{why}");
            assert_eq!(frame, before, "{why}: unchanged");
        }
        let mut nack = BytesMut::new();
        let method = Method::BasicNack(BasicNack {
            delivery_tag: 1,
            multiple: false,
            requeue: true,
        });
        encode_method(3, &method, &mut nack);
        assert!(!extend_ack(&mut nack, 3, 5), "a nack is not an ack");
        let mut short = ack_frame(3, 1, false);
        assert!(!extend_ack(&mut short[..ACK_FRAME_LEN - 1], 3, 5), "a truncated frame");
        let mut heartbeat = BytesMut::new();
        Frame::Heartbeat.encode(&mut heartbeat);
        assert!(!extend_ack(&mut heartbeat, 0, 5));
    }
}
