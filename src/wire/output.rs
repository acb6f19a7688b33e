//! Bytes to send: frames encoded into one buffer, with message bodies between them by
//! reference.
//!
//! A large body goes to the socket from the application's own `Bytes`: its body frames
//! are a frame header and a frame-end in the buffer and, between them, a slice of the
//! body ([`encode_content_shared`](super::encode_content_shared)). Nothing copies it, and
//! no buffer grows to its size. The writer takes the bytes off the front as a
//! [`Buf`], whose [`chunks_vectored`](Buf::chunks_vectored) feeds a vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Output for the peer: encoded bytes, and shared slices that go between them.
#[derive(Debug, Default)]
pub struct Output {
    /// Encoded bytes.
    buf: BytesMut,
    /// Encoded bytes taken off the front of `buf` so far: the offsets of `shared` count
    /// from the first byte ever written.
    start: usize,
    /// Slices that go out, unchanged, before the encoded byte at their offset.
    shared: VecDeque<Shared>,
    /// Bytes of `shared`.
    shared_len: usize,
}

#[derive(Debug)]
struct Shared {
    /// Offset of the encoded byte this slice goes before (from the first byte written).
    at: usize,
    bytes: Bytes,
}

/// A position in an [`Output`], to [`truncate`](Output::truncate) back to or move from.
/// Valid while nothing is taken off the front ([`Buf::advance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Encoded bytes before the position.
    pub encoded: usize,
    /// Shared slices before the position.
    pub shared: usize,
}

/// What lies between two positions of an [`Output`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Encoded bytes.
    pub encoded: usize,
    /// Shared slices.
    pub shared: usize,
    /// All bytes: the encoded ones and those of the shared slices.
    pub len: usize,
}

impl Output {
    /// An empty output.
    pub fn new() -> Self {
        Output::default()
    }

    /// An empty output whose buffer has room for `capacity` encoded bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Output {
            buf: BytesMut::with_capacity(capacity),
            ..Output::default()
        }
    }

    /// Bytes to send: encoded and shared.
    pub fn len(&self) -> usize {
        self.buf.len() + self.shared_len
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.shared.is_empty()
    }

    /// True when some bytes are shared slices (a vectored write saves copying them).
    pub fn has_shared(&self) -> bool {
        !self.shared.is_empty()
    }

    /// The encoded bytes, to append frames to. What is appended goes out after
    /// everything already in the output.
    pub fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The encoded bytes; the shared slices go between them.
    pub fn encoded(&self) -> &[u8] {
        &self.buf
    }

    /// Appends `bytes` without copying them (nothing for an empty slice).
    pub fn push_shared(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.shared_len += bytes.len();
        self.shared.push_back(Shared {
            at: self.start + self.buf.len(),
            bytes,
        });
    }

    /// The current end.
    pub fn mark(&self) -> Mark {
        Mark {
            encoded: self.buf.len(),
            shared: self.shared.len(),
        }
    }

    /// What was appended since `mark`.
    pub fn since(&self, mark: Mark) -> Span {
        let shared = self.shared.len().saturating_sub(mark.shared);
        let encoded = self.buf.len().saturating_sub(mark.encoded);
        let shared_len: usize = self.shared.iter().skip(mark.shared).map(|s| s.bytes.len()).sum();
        Span {
            encoded,
            shared,
            len: encoded + shared_len,
        }
    }

    /// Drops everything appended since `mark`.
    pub fn truncate(&mut self, mark: Mark) {
        self.buf.truncate(mark.encoded);
        while self.shared.len() > mark.shared {
            if let Some(s) = self.shared.pop_back() {
                self.shared_len -= s.bytes.len();
            }
        }
    }

    /// Moves everything appended since `mark` to the end of `to` (the encoded bytes are
    /// copied, the shared slices moved); returns what moved.
    pub fn move_tail(&mut self, mark: Mark, to: &mut Output) -> Span {
        let span = self.since(mark);
        let from = self.start + mark.encoded;
        let onto = to.start + to.buf.len();
        for s in self.shared.drain(mark.shared.min(self.shared.len())..) {
            self.shared_len -= s.bytes.len();
            to.shared_len += s.bytes.len();
            to.shared.push_back(Shared {
                at: onto + (s.at - from),
                bytes: s.bytes,
            });
        }
        to.buf.extend_from_slice(&self.buf[mark.encoded.min(self.buf.len())..]);
        self.buf.truncate(mark.encoded);
        span
    }

    /// Moves the first `span` (as [`move_tail`](Self::move_tail) returned it) to the end
    /// of `to`.
    pub fn move_head(&mut self, span: Span, to: &mut Output) {
        let encoded = span.encoded.min(self.buf.len());
        let onto = to.start + to.buf.len();
        for _ in 0..span.shared {
            let Some(s) = self.shared.pop_front() else { break };
            self.shared_len -= s.bytes.len();
            to.shared_len += s.bytes.len();
            to.shared.push_back(Shared {
                at: onto + (s.at - self.start),
                bytes: s.bytes,
            });
        }
        to.buf.extend_from_slice(&self.buf[..encoded]);
        self.buf.advance(encoded);
        self.start += encoded;
    }

    /// Moves all of `from` to the end of this output. When this one is empty the two
    /// swap buffers, so nothing is copied.
    pub fn append(&mut self, from: &mut Output) {
        if self.is_empty() {
            std::mem::swap(self, from);
            from.start = 0;
            from.buf.clear();
        } else {
            let mark = Mark { encoded: 0, shared: 0 };
            from.move_tail(mark, self);
        }
    }

    /// Appends everything, shared slices copied in, to `dst`; leaves this output empty.
    pub fn copy_into(&mut self, dst: &mut BytesMut) {
        dst.reserve(self.len());
        while self.has_remaining() {
            let n = {
                let chunk = self.chunk();
                dst.extend_from_slice(chunk);
                chunk.len()
            };
            self.advance(n);
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.shared.clear();
        self.shared_len = 0;
    }

    /// When empty and its buffer holds more than `keep` bytes of capacity (grown for a
    /// peak), lets that buffer go for a new one of `keep`.
    pub fn shrink(&mut self, keep: usize) {
        if self.is_empty() && self.buf.try_reclaim(keep + 1) {
            self.buf = BytesMut::with_capacity(keep);
            self.start = 0;
        }
    }

    /// Encoded bytes before the first shared slice, from the front.
    fn encoded_head(&self) -> usize {
        self.shared
            .front()
            .map_or(self.buf.len(), |s| (s.at - self.start).min(self.buf.len()))
    }
}

impl Buf for Output {
    fn remaining(&self) -> usize {
        self.len()
    }

    fn chunk(&self) -> &[u8] {
        match self.encoded_head() {
            0 => self.shared.front().map_or(&[][..], |s| &s.bytes[..]),
            n => &self.buf[..n],
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            match self.encoded_head() {
                0 => {
                    let Some(front) = self.shared.front_mut() else { return };
                    let n = cnt.min(front.bytes.len());
                    front.bytes.advance(n);
                    self.shared_len -= n;
                    cnt -= n;
                    if front.bytes.is_empty() {
                        self.shared.pop_front();
                    }
                }
                head => {
                    let n = cnt.min(head);
                    self.buf.advance(n);
                    self.start += n;
                    cnt -= n;
                }
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        let mut encoded_from = 0;
        let mut shared = self.shared.iter();
        let mut next = shared.next();
        while filled < dst.len() {
            let until = next.map_or(self.buf.len(), |s| (s.at - self.start).min(self.buf.len()));
            if until > encoded_from {
                dst[filled] = IoSlice::new(&self.buf[encoded_from..until]);
                filled += 1;
                encoded_from = until;
                continue;
            }
            let Some(s) = next else { break };
            dst[filled] = IoSlice::new(&s.bytes);
            filled += 1;
            next = shared.next();
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes `out` sends, shared slices in place, taken `step` at a time.
    fn drain(out: &mut Output, step: usize) -> Vec<u8> {
        let mut all = Vec::new();
        while out.has_remaining() {
            let chunk = out.chunk();
            assert!(!chunk.is_empty(), "a chunk while bytes remain");
            let n = chunk.len().min(step);
            all.extend_from_slice(&chunk[..n]);
            out.advance(n);
        }
        assert_eq!(out.len(), 0);
        all
    }

    /// "ab" [shared "XYZ"] "cd" [shared "Q"] "e".
    fn sample() -> Output {
        let mut out = Output::new();
        out.buf_mut().extend_from_slice(b"ab");
        out.push_shared(Bytes::from_static(b"XYZ"));
        out.buf_mut().extend_from_slice(b"cd");
        out.push_shared(Bytes::from_static(b"Q"));
        out.push_shared(Bytes::new());
        out.buf_mut().extend_from_slice(b"e");
        out
    }

    #[test]
    fn shared_slices_go_between_the_encoded_bytes() {
        for step in [1, 2, 3, 100] {
            let mut out = sample();
            assert_eq!(out.len(), 9);
            assert_eq!(drain(&mut out, step), b"abXYZcdQe", "step {step}");
        }
        let mut copied = BytesMut::from(&b">"[..]);
        sample().copy_into(&mut copied);
        assert_eq!(&copied[..], b">abXYZcdQe");
    }

    #[test]
    fn vectored_chunks_are_the_same_bytes_in_order() {
        let mut out = sample();
        out.advance(3); // "ab" and the "X" of "XYZ"
        let mut slices = [IoSlice::new(&[]); 8];
        let n = out.chunks_vectored(&mut slices);
        let joined: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(joined, b"YZcdQe");
        assert_eq!(n, 4);
        let mut two = [IoSlice::new(&[]); 2];
        assert_eq!(out.chunks_vectored(&mut two), 2);
        assert_eq!((&two[0][..], &two[1][..]), (&b"YZ"[..], &b"cd"[..]));
    }

    #[test]
    fn truncate_and_move_keep_shared_slices_with_their_frames() {
        let mut out = Output::new();
        out.buf_mut().extend_from_slice(b"1");
        let mark = out.mark();
        out.buf_mut().extend_from_slice(b"2");
        out.push_shared(Bytes::from_static(b"body"));
        out.buf_mut().extend_from_slice(b"3");
        assert_eq!(
            out.since(mark),
            Span {
                encoded: 2,
                shared: 1,
                len: 6
            }
        );
        let mut held = Output::new();
        held.buf_mut().extend_from_slice(b"h");
        let span = out.move_tail(mark, &mut held);
        assert_eq!(span.len, 6);
        assert_eq!(out.len(), 1);
        out.buf_mut().extend_from_slice(b"4");
        // The first byte of `held` is someone else's: move it out first.
        let mut other = Output::new();
        held.move_head(
            Span {
                encoded: 1,
                shared: 0,
                len: 1,
            },
            &mut other,
        );
        held.move_head(span, &mut out);
        assert!(held.is_empty());
        assert_eq!(drain(&mut out, 100), b"142body3");
        assert_eq!(drain(&mut other, 100), b"h");

        let mut out = sample();
        let mark = out.mark();
        out.buf_mut().extend_from_slice(b"f");
        out.push_shared(Bytes::from_static(b"gone"));
        out.buf_mut().extend_from_slice(b"g");
        out.truncate(mark);
        assert_eq!(drain(&mut out, 100), b"abXYZcdQe");
    }

    #[test]
    fn append_after_a_partial_write_keeps_the_order() {
        let mut writer = sample();
        writer.advance(4);
        let mut more = sample();
        writer.append(&mut more);
        assert!(more.is_empty());
        assert_eq!(drain(&mut writer, 2), b"ZcdQeabXYZcdQe");
        // Into an empty output: a swap, and the swapped-out buffer is reusable.
        let mut empty = Output::new();
        let mut full = sample();
        empty.append(&mut full);
        full.buf_mut().extend_from_slice(b"x");
        full.push_shared(Bytes::from_static(b"y"));
        assert_eq!(drain(&mut full, 1), b"xy");
        assert_eq!(drain(&mut empty, 1), b"abXYZcdQe");
    }

    #[test]
    fn an_emptied_output_lets_a_peak_buffer_go() {
        let mut out = Output::new();
        out.buf_mut().extend_from_slice(&[0; 1 << 20]);
        out.advance(1 << 20);
        out.shrink(4096);
        assert!(out.buf_mut().capacity() <= 4096);
        out.buf_mut().extend_from_slice(b"kept");
        out.shrink(1);
        assert_eq!(out.encoded(), b"kept", "not while bytes wait");
    }
}
