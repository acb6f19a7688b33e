//! Arbitrary method payloads (class id, method id, arguments) for `Method::decode`.
//! Never panics; a method that decodes re-encodes to bytes that decode to an equal
//! method, and encoding is stable.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use warren::wire::Method;

fuzz_target!(|data: &[u8]| {
    let src = Bytes::copy_from_slice(data);
    let Ok(method) = Method::decode(&src, &src[..]) else {
        return;
    };
    let info = method.info();
    assert_eq!(info.id, method.id());
    assert_eq!(info.name, method.name());
    assert_eq!(
        &data[..4],
        &[info.id.class_id.to_be_bytes(), info.id.method_id.to_be_bytes()].concat()[..]
    );
    let mut first = BytesMut::new();
    method.encode(&mut first);
    let first = first.freeze();
    let again = Method::decode(&first, &first[..]).expect("an encoded method decodes");
    let mut second = BytesMut::new();
    again.encode(&mut second);
    assert_eq!(first, second.freeze(), "encoding of {method:?} is not stable");
    if !format!("{method:?}").contains("NaN") {
        assert_eq!(method, again);
    }
});
