//! Frames parsed from arbitrary bytes encode to bytes that parse back to an equal
//! frame, and encoding that frame again gives the same bytes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren::wire::Frame;

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
    }
});
