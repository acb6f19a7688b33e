//! Types generated at build time from `spec/amqp0-9-1.xml` by `warren-codegen`:
//! constants, reply codes, one struct per method, the [`Method`] enum and
//! [`BasicProperties`]. See `codegen/` for the generator.

#![allow(missing_docs)]

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::codec as c;
use crate::wire::{
    ErrorSeverity, FieldRef, FieldTable, MethodId, MethodInfo, ReplyCode, ShortStr, TableRef, WireError,
};

include!(concat!(env!("OUT_DIR"), "/amqp0_9_1.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_expected_unless_no_wait_or_none_exists() {
        // Methods with a no-wait flag: expected exactly when it is clear.
        let flagged: [(Method, Method); 11] = [
            (
                ExchangeDeclare::default().into(),
                ExchangeDeclare {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (
                ExchangeDelete::default().into(),
                ExchangeDelete {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (
                ExchangeBind::default().into(),
                ExchangeBind {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (
                ExchangeUnbind::default().into(),
                ExchangeUnbind {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (
                QueueDeclare::default().into(),
                QueueDeclare {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (
                QueueBind::default().into(),
                QueueBind {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (
                QueuePurge::default().into(),
                QueuePurge {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (
                QueueDelete::default().into(),
                QueueDelete {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (
                BasicConsume::default().into(),
                BasicConsume {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (
                BasicCancel::default().into(),
                BasicCancel {
                    no_wait: true,
                    ..Default::default()
                }
                .into(),
            ),
            (ConfirmSelect::default().into(), ConfirmSelect { nowait: true }.into()),
        ];
        for (waits, no_wait) in flagged {
            assert!(waits.expects_reply(), "{}", waits.name());
            assert!(!no_wait.expects_reply(), "{} with no-wait", no_wait.name());
        }
        // Synchronous without a flag; replies and asynchronous methods.
        let answered: [Method; 4] = [
            QueueUnbind::default().into(),
            BasicQos::default().into(),
            TxSelect {}.into(),
            BasicGet::default().into(),
        ];
        assert!(answered.iter().all(Method::expects_reply));
        let unanswered: [Method; 4] = [
            BasicAck::default().into(),
            BasicPublish::default().into(),
            QueueDeclareOk::default().into(),
            ChannelOpenOk {}.into(),
        ];
        assert!(!unanswered.iter().any(Method::expects_reply));
    }
}
