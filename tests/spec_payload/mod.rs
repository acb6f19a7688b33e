//! Method payloads laid out from the spec's field list (shared by the wire tests).

use warren_codegen::model::{Class, Method, Type};

/// The payload of `m`: its class and method ids, then each field as `value` writes it
/// (bits are packed, all clear, 8 to an octet).
pub fn payload(class: &Class, m: &Method, value: impl Fn(Type) -> Vec<u8>) -> Vec<u8> {
    let mut payload = [class.index.to_be_bytes(), m.index.to_be_bytes()].concat();
    let mut in_bits = 0;
    for f in &m.fields {
        if f.ty == Type::Bit {
            if in_bits % 8 == 0 {
                payload.push(0);
            }
            in_bits += 1;
            continue;
        }
        in_bits = 0;
        payload.extend(value(f.ty));
    }
    payload
}
