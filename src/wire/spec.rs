//! Types generated at build time from `spec/amqp0-9-1.xml` by `warren-codegen`:
//! constants, reply codes, one struct per method, the [`Method`] enum and
//! [`BasicProperties`]. See `codegen/` for the generator.

#![allow(missing_docs)]

use bytes::{Bytes, BytesMut};

use crate::wire::codec as c;
use crate::wire::{ErrorSeverity, FieldRef, FieldTable, MethodId, MethodInfo, ReplyCode, ShortStr, WireError};

include!(concat!(env!("OUT_DIR"), "/amqp0_9_1.rs"));
