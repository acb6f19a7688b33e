//! Arbitrary bytes as a read buffer: take frames off it with `Frame::parse` until it
//! needs more or fails, under several `frame_max` limits. Never panics; "need more"
//! and framing errors leave the buffer as it was; a payload error and each frame consume
//! exactly the frame's own bytes. `FrameRef::parse` reads the same input in place with
//! the same outcome, frame by frame.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren::wire::{FRAME_OVERHEAD, Frame, FrameRef, WireError};

/// No limit, the spec's minimum, RabbitMQ's default, and a few tiny ones.
const FRAME_MAXES: [u32; 6] = [0, 4096, 131_072, 8, 9, 64];

fuzz_target!(|data: &[u8]| {
    for frame_max in FRAME_MAXES {
        let mut buf = BytesMut::from(data);
        let mut offset = 0;
        loop {
            let before = buf.clone();
            let in_place = FrameRef::parse(&before, frame_max);
            let owned = Frame::parse(&mut buf, frame_max);
            match (&owned, in_place) {
                (Ok(Some(frame)), Ok(Some((view, len)))) => {
                    assert_eq!(len, before.len() - buf.len());
                    assert_eq!(&view.into_owned(), frame);
                }
                (Ok(None), Ok(None)) => {}
                (Err(a), Err(b)) => assert_eq!(a, &b),
                (a, b) => panic!("owned {a:?}, in place {b:?}"),
            }
            match owned {
                Ok(Some(frame)) => {
                    let size = u32::from_be_bytes([before[3], before[4], before[5], before[6]]) as usize;
                    let used = before.len() - buf.len();
                    assert_eq!(used, size + FRAME_OVERHEAD, "frame at {offset} consumed {used} bytes");
                    assert!(frame_max == 0 || used <= frame_max as usize);
                    assert_eq!(frame.channel(), u16::from_be_bytes([before[1], before[2]]));
                    assert_eq!(&buf[..], &before[used..]);
                    offset += used;
                }
                Ok(None) => {
                    assert_eq!(buf, before, "need-more changed the buffer");
                    break;
                }
                Err(e) => {
                    let code = e.reply_code().0;
                    assert!(matches!(code, 501..=503), "{e:?} -> {code}");
                    assert!(!e.to_string().is_empty());
                    if e.is_framing_error() {
                        assert_eq!(buf, before, "{e:?} at {offset} changed the buffer");
                    } else {
                        let size = u32::from_be_bytes([before[3], before[4], before[5], before[6]]) as usize;
                        assert_eq!(&buf[..], &before[size + FRAME_OVERHEAD..], "{e:?} at {offset}");
                    }
                    if let WireError::FrameTooLarge { size, max } = e {
                        assert!(max != 0 && size > u64::from(max));
                    }
                    break;
                }
            }
        }
    }
});
