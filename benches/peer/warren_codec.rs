//! warren's codec as a peer-bench `Codec` (dropped into `src/codec/` of a copy of
//! /work/shared/peer-bench by `scripts/peer-codec.sh`; not compiled in warren's workspace).
//!
//! The message is the reference one: the amq-protocol codec's encoding is decoded by
//! warren, and warren must encode it back to the identical bytes, so all three codecs
//! do the same work.
//!
//! - encode: `Frame::encode` of the 3 frames into a `BytesMut` that takes over the
//!   harness's `Vec` without copying (`Vec -> Bytes -> BytesMut -> Vec` are all
//!   zero-copy for a unique buffer), so the timed region is serialization only.
//! - decode: warren parses a `BytesMut` read buffer and hands out zero-copy `Bytes`
//!   slices of it; the harness gives a borrowed `&[u8]`, so the bytes are first copied
//!   into a reused, already-faulted `BytesMut`, 128 KiB at a time, and each piece is
//!   parsed before the next is copied: what the client's driver does with its socket
//!   reads (`READ_BUF` in `src/client/driver/session.rs`). That copy is inside the timed
//!   region (warren's own `cargo bench -p warren-benches --bench codec` times decode with
//!   and without it).
//!
//! `warren-in-place` ([`WarrenInPlaceCodec`]) decodes with `FrameRef::parse` instead:
//! the same checks, views of the harness's `&[u8]` (no copy-in, no reference counts). Its
//! encode is warren's. The client decodes with `Frame::parse`, the `warren` row.
//!
//! `floor` ([`FloorCodec`]) is no codec: its encode appends the encoded message's bytes
//! (one `extend_from_slice` each), the memory traffic every encoder pays; its decode steps
//! from frame to frame by their length and checks each frame-end octet, the walk every
//! decoder does (it reads 8 bytes a frame, not the bodies, and copies nothing: warren's
//! decode also copies its input into a read buffer). Measured in the same process, so
//! `codec - floor` is a codec's own work.

use std::cell::RefCell;

use anyhow::{Result, anyhow, bail};
use bytes::{BufMut, Bytes, BytesMut};
use warren::wire::{Frame, FrameRef};

use super::{Codec, amq_protocol_codec::AmqProtocolCodec};

/// How much one socket read brings at most: the client driver's read buffer size.
const READ_BUF: usize = 128 * 1024;

pub struct WarrenCodec {
    /// basic.deliver, content header, body: owned frame values, as a server would hold them.
    frames: Vec<Frame>,
    /// Encode only frame `k`; None = all three.
    only: Option<usize>,
    /// The read buffer decode copies into (a client's socket read buffer).
    read_buf: RefCell<BytesMut>,
}

impl WarrenCodec {
    pub fn from_reference(reference: &AmqProtocolCodec) -> Result<Self> {
        let wire = reference.one_message()?;
        let mut buf = BytesMut::from(&wire[..]);
        let mut frames = Vec::new();
        while let Some(f) = Frame::parse(&mut buf, 0).map_err(|e| anyhow!("warren decoding the reference: {e}"))? {
            frames.push(f);
        }
        if frames.len() != 3 || !buf.is_empty() {
            bail!(
                "warren: reference message gave {} frames and {} stray bytes",
                frames.len(),
                buf.len()
            );
        }
        let mut again = BytesMut::new();
        for f in &frames {
            f.encode(&mut again);
        }
        if again[..] != wire[..] {
            bail!(
                "warren encodes the reference message differently ({} vs {} bytes)",
                again.len(),
                wire.len()
            );
        }
        Ok(Self {
            frames,
            only: None,
            read_buf: RefCell::new(BytesMut::new()),
        })
    }
}

impl Codec for WarrenCodec {
    fn name(&self) -> &'static str {
        "warren"
    }

    fn set_only(&mut self, k: Option<usize>) {
        self.only = k;
    }

    fn encode(&self, n: usize, out: &mut Vec<u8>) -> Result<usize> {
        let selected: Vec<&Frame> = self
            .frames
            .iter()
            .enumerate()
            .filter(|(k, _)| self.only.is_none_or(|o| o == *k))
            .map(|(_, f)| f)
            .collect();
        let mut buf = BytesMut::from(Bytes::from(std::mem::take(out)));
        buf.clear();
        for _ in 0..n {
            for f in &selected {
                f.encode(&mut buf);
            }
        }
        let len = buf.len();
        *out = Vec::from(buf);
        Ok(len)
    }

    fn decode(&self, buf: &[u8]) -> Result<usize> {
        let mut rb = self.read_buf.borrow_mut();
        rb.clear();
        let mut frames = 0;
        for read in buf.chunks(READ_BUF) {
            rb.reserve(read.len());
            rb.put_slice(read);
            while let Some(frame) =
                Frame::parse(&mut rb, 0).map_err(|e| anyhow!("warren: after {frames} frames: {e}"))?
            {
                std::hint::black_box(&frame);
                frames += 1;
            }
        }
        if !rb.is_empty() {
            bail!("warren: truncated frame after {frames} frames");
        }
        Ok(frames)
    }
}

/// warren's in-place reader, `FrameRef::parse`, over the harness's `&[u8]`; encode as
/// [`WarrenCodec`].
pub struct WarrenInPlaceCodec(WarrenCodec);

impl WarrenInPlaceCodec {
    pub fn from_reference(reference: &AmqProtocolCodec) -> Result<Self> {
        Ok(Self(WarrenCodec::from_reference(reference)?))
    }
}

impl Codec for WarrenInPlaceCodec {
    fn name(&self) -> &'static str {
        "warren-in-place"
    }

    fn set_only(&mut self, k: Option<usize>) {
        self.0.set_only(k);
    }

    fn encode(&self, n: usize, out: &mut Vec<u8>) -> Result<usize> {
        self.0.encode(n, out)
    }

    fn decode(&self, buf: &[u8]) -> Result<usize> {
        let (mut at, mut frames) = (0, 0);
        while let Some((frame, len)) =
            FrameRef::parse(&buf[at..], 0).map_err(|e| anyhow!("warren in place: after {frames} frames: {e}"))?
        {
            std::hint::black_box(&frame);
            at += len;
            frames += 1;
        }
        if at != buf.len() {
            bail!("warren in place: truncated frame after {frames} frames");
        }
        Ok(frames)
    }
}

/// The floor under every codec: the encoded bytes written, or stepped over frame by frame.
pub struct FloorCodec {
    /// The reference message, encoded.
    wire: Vec<u8>,
    /// Byte ranges of its three frames, for `set_only`.
    frames: Vec<std::ops::Range<usize>>,
    only: Option<usize>,
}

impl FloorCodec {
    pub fn from_reference(reference: &AmqProtocolCodec) -> Result<Self> {
        let wire = reference.one_message()?;
        let (mut frames, mut at) = (Vec::new(), 0);
        while let Some((_, len)) = FrameRef::parse(&wire[at..], 0).map_err(|e| anyhow!("floor: {e}"))? {
            frames.push(at..at + len);
            at += len;
        }
        if frames.len() != 3 || at != wire.len() {
            bail!("floor: reference message gave {} frames", frames.len());
        }
        Ok(Self { wire, frames, only: None })
    }
}

impl Codec for FloorCodec {
    fn name(&self) -> &'static str {
        "floor"
    }

    fn set_only(&mut self, k: Option<usize>) {
        self.only = k;
    }

    fn encode(&self, n: usize, out: &mut Vec<u8>) -> Result<usize> {
        let bytes = match self.only {
            Some(k) => {
                let range = self.frames.get(k).ok_or_else(|| anyhow!("floor: no frame {k}"))?;
                &self.wire[range.clone()]
            }
            None => &self.wire[..],
        };
        out.clear();
        for _ in 0..n {
            out.extend_from_slice(std::hint::black_box(bytes));
        }
        Ok(out.len())
    }

    fn decode(&self, buf: &[u8]) -> Result<usize> {
        let (mut at, mut frames) = (0, 0);
        while let Some(head) = buf.get(at..at + 7) {
            let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
            let Some(end) = (at + 7).checked_add(size).filter(|&end| end < buf.len()) else {
                bail!("floor: truncated frame after {frames} frames");
            };
            if buf[end] != 0xCE {
                bail!("floor: bad frame end after {frames} frames");
            }
            at = end + 1;
            frames += 1;
        }
        if at != buf.len() {
            bail!("floor: truncated frame after {frames} frames");
        }
        Ok(frames)
    }
}
