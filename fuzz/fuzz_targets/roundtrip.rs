//! Frames parsed from arbitrary bytes encode to bytes that parse back to an equal
//! frame, and encoding that frame again gives the same bytes. A header's properties,
//! checked at decode and built on first read, encode the same built as received.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren::wire::{ContentHeader, Frame};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = Frame::parse(&mut buf, 0) {
        let mut first = BytesMut::new();
        frame.encode(&mut first);
        let encoded = first.clone().freeze();
        let again = match Frame::parse(&mut first, 0) {
            Ok(Some(again)) => again,
            other => panic!("re-parsing {frame:?} from {encoded:02x?}: {other:?}"),
        };
        assert!(first.is_empty(), "encoding of {frame:?} holds more than one frame");
        let mut second = BytesMut::new();
        again.encode(&mut second);
        assert_eq!(encoded, second.freeze(), "encoding of {frame:?} is not stable");
        if !format!("{frame:?}").contains("NaN") {
            assert_eq!(frame, again);
        }
        if let Frame::Header { channel, header } = &frame {
            // Built from the checked bytes, the properties encode to those same bytes.
            let built = Frame::Header {
                channel: *channel,
                header: ContentHeader {
                    properties: header.properties.clone().into_inner().into(),
                    ..header.clone()
                },
            };
            let mut from_built = BytesMut::new();
            built.encode(&mut from_built);
            assert_eq!(encoded, from_built.freeze(), "built properties of {frame:?} encode otherwise");
        }
    }
});
