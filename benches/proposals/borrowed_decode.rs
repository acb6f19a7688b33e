//! Prototype measured for benches/README.md ("borrowed decode"): not compiled.
//!
//! A borrowed frame parser doing the same validation as warren's owned decode of the
//! benchmark message (frame end, method id, bits, UTF-8 short strings, every field-table
//! value and nesting depth, property flags, trailing bytes) but returning `&str`/`&[u8]`
//! views of the read buffer: no reference counts, no allocation, no large moves.
//! To reproduce: append this file to benches/benches/codec.rs and add, in `main`'s case
//! loop, a "decode-borrowed" case that runs `decode_all_borrowed(&stream[..])`.

// ---- prototype: borrowed decode (no refcounts, no allocation), same validation ----
mod borrowed {
    #[derive(Debug)]
    pub enum FrameRef<'a> {
        Deliver { channel: u16, consumer_tag: &'a str, delivery_tag: u64, redelivered: bool, exchange: &'a str, routing_key: &'a str },
        Header { channel: u16, class_id: u16, body_size: u64, flags: u16, props: [&'a [u8]; 14] },
        Body { channel: u16, payload: &'a [u8] },
        Heartbeat,
    }

    struct R<'a>(&'a [u8]);
    impl<'a> R<'a> {
        #[inline(always)]
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.0.len() < n {
                return None;
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Some(a)
        }
        #[inline(always)]
        fn u8(&mut self) -> Option<u8> {
            self.take(1).map(|b| b[0])
        }
        #[inline(always)]
        fn u16(&mut self) -> Option<u16> {
            self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
        }
        #[inline(always)]
        fn u32(&mut self) -> Option<u32> {
            self.take(4).map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        }
        #[inline(always)]
        fn u64(&mut self) -> Option<u64> {
            self.take(8).map(|b| u64::from_be_bytes(b.try_into().unwrap()))
        }
        #[inline(always)]
        fn shortstr(&mut self) -> Option<&'a str> {
            let n = self.u8()? as usize;
            let s = self.take(n)?;
            if s.is_ascii() { std::str::from_utf8(s).ok() } else { std::str::from_utf8(s).ok() }
        }
        fn value(&mut self, depth: usize) -> Option<()> {
            let fixed = match self.u8()? {
                b't' | b'b' | b'B' => 1,
                b's' | b'u' => 2,
                b'I' | b'i' | b'f' => 4,
                b'l' | b'd' | b'T' => 8,
                b'D' => 5,
                b'V' => 0,
                b'S' | b'x' => {
                    let n = self.u32()? as usize;
                    self.take(n)?;
                    return Some(());
                }
                b'A' | b'F' if depth >= 32 => return None,
                b'A' => {
                    let n = self.u32()? as usize;
                    let mut r = R(self.take(n)?);
                    while !r.0.is_empty() {
                        r.value(depth + 1)?;
                    }
                    return Some(());
                }
                b'F' => {
                    let n = self.u32()? as usize;
                    R(self.take(n)?).table_body(depth + 1)?;
                    return Some(());
                }
                _ => return None,
            };
            self.take(fixed).map(|_| ())
        }
        fn table_body(&mut self, depth: usize) -> Option<()> {
            while !self.0.is_empty() {
                self.shortstr()?;
                self.value(depth)?;
            }
            Some(())
        }
    }

    /// One frame at the front of `buf` and its length.
    #[inline(never)]
    pub fn parse(buf: &[u8]) -> Option<(FrameRef<'_>, usize)> {
        let head = buf.get(..7)?;
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        let len = size + 8;
        if buf.len() < len || buf[len - 1] != 0xCE {
            return None;
        }
        let channel = u16::from_be_bytes([head[1], head[2]]);
        let mut r = R(&buf[7..len - 1]);
        let f = match head[0] {
            1 => {
                let (c, m) = (r.u16()?, r.u16()?);
                if (c, m) != (60, 60) {
                    return None;
                }
                let consumer_tag = r.shortstr()?;
                let delivery_tag = r.u64()?;
                let bits = r.u8()?;
                if bits > 1 {
                    return None;
                }
                let exchange = r.shortstr()?;
                let routing_key = r.shortstr()?;
                FrameRef::Deliver { channel, consumer_tag, delivery_tag, redelivered: bits == 1, exchange, routing_key }
            }
            2 => {
                let class_id = r.u16()?;
                if r.u16()? != 0 {
                    return None;
                }
                let body_size = r.u64()?;
                let flags = r.u16()?;
                if flags & 0x0003 != 0 {
                    return None;
                }
                let mut props: [&[u8]; 14] = [&[]; 14];
                for (k, p) in props.iter_mut().enumerate() {
                    if flags & (0x8000 >> k) == 0 {
                        continue;
                    }
                    let before = r.0;
                    match k {
                        2 => {
                            let n = r.u32()? as usize;
                            R(r.take(n)?).table_body(0)?;
                        }
                        3 | 4 => {
                            r.u8()?;
                        }
                        9 => {
                            r.u64()?;
                        }
                        _ => {
                            r.shortstr()?;
                        }
                    }
                    *p = &before[..before.len() - r.0.len()];
                }
                FrameRef::Header { channel, class_id, body_size, flags, props }
            }
            3 => return Some((FrameRef::Body { channel, payload: r.0 }, len)),
            8 => FrameRef::Heartbeat,
            _ => return None,
        };
        if !r.0.is_empty() {
            return None;
        }
        Some((f, len))
    }
}

#[inline(never)]
fn decode_all_borrowed(buf: &[u8]) -> usize {
    let mut at = 0;
    let mut count = 0;
    while at < buf.len() {
        let (f, len) = borrowed::parse(&buf[at..]).expect("bench input decodes");
        std::hint::black_box(&f);
        at += len;
        count += 1;
    }
    count
}
