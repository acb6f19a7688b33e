//! Assembling a message from its method, content header and body frames.
//!
//! A content method (`basic.deliver`, `basic.return`, `basic.get-ok`) is followed on
//! its channel by one content header and body frames until `body_size` bytes arrived.
//! - One body frame: its `Bytes` (a slice of the read buffer) is the body, no copy.
//! - Several: they are concatenated once, into a buffer that never reserves more than
//!   what arrived plus [`MAX_PREALLOC`], whatever `body_size` claims.
//! - Bodies over `max_content_size` are refused at the header, before any byte is kept.

use bytes::{Bytes, BytesMut};

use crate::wire::{BasicDeliver, BasicGetOk, BasicReturn, MethodId, Properties};

/// Most bytes reserved ahead of what arrived.
pub(super) const MAX_PREALLOC: u64 = 1 << 20;

/// The method the content belongs to.
#[derive(Debug)]
pub(super) enum ContentKind {
    Deliver(BasicDeliver),
    Return(BasicReturn),
    GetOk { method: BasicGetOk, no_ack: bool },
}

impl ContentKind {
    pub(super) fn method_id(&self) -> MethodId {
        match self {
            ContentKind::Deliver(_) => BasicDeliver::ID,
            ContentKind::Return(_) => BasicReturn::ID,
            ContentKind::GetOk { .. } => BasicGetOk::ID,
        }
    }
}

/// The body received so far.
#[derive(Debug, Default)]
pub(super) enum Body {
    #[default]
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Body {
    pub(super) fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::One(b) => b.len() as u64,
            Body::Many(b) => b.len() as u64,
        }
    }

    /// Appends a body frame; `size` is the announced total, already checked to hold it.
    pub(super) fn push(&mut self, part: Bytes, size: u64) {
        if part.is_empty() {
            return;
        }
        *self = match std::mem::take(self) {
            Body::Empty => Body::One(part),
            Body::One(first) => {
                let arrived = first.len() as u64 + part.len() as u64;
                let cap = size.min(arrived.saturating_add(MAX_PREALLOC));
                let mut buf = BytesMut::with_capacity(usize::try_from(cap).unwrap_or(usize::MAX));
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&part);
                Body::Many(buf)
            }
            Body::Many(mut buf) => {
                buf.extend_from_slice(&part);
                Body::Many(buf)
            }
        };
    }

    pub(super) fn finish(self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::One(b) => b,
            Body::Many(b) => b.freeze(),
        }
    }
}

/// What the channel waits for next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per channel, inside the channel's slot
pub(super) enum Stage {
    Header,
    Body {
        properties: Properties,
        size: u64,
        body: Body,
    },
}

/// A message being received on one channel.
#[derive(Debug)]
pub(super) struct Assembly {
    pub(super) kind: ContentKind,
    pub(super) stage: Stage,
}

impl Assembly {
    pub(super) fn new(kind: ContentKind) -> Self {
        Assembly {
            kind,
            stage: Stage::Header,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_is_zero_copy_and_many_are_bounded() {
        let src = Bytes::from_static(b"hello world");
        let mut body = Body::default();
        body.push(src.slice(..5), 11);
        let Body::One(b) = &body else { panic!("one frame") };
        assert_eq!(b.as_ptr(), src.as_ptr(), "the frame's bytes are kept, not copied");
        body.push(src.slice(5..), 11);
        assert_eq!(body.len(), 11);
        assert_eq!(body.finish(), src);

        let mut huge = Body::default();
        huge.push(Bytes::from_static(b"ab"), u64::MAX);
        huge.push(Bytes::from_static(b"cd"), u64::MAX);
        let Body::Many(buf) = &huge else { panic!("two frames") };
        assert!(
            buf.capacity() as u64 <= 4 + MAX_PREALLOC,
            "capacity {} is bounded",
            buf.capacity()
        );
    }
}
