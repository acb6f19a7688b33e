//! What a handle asks of the connection task: [`Command`] and the parts it carries.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::handoff::DeliverySender;
use super::publish::PublishCell;
use super::shared::{ChannelShared, ConsumerEnd};
use crate::error::Error;
use crate::proto::{ChannelId, Delivery, DeliveryTag, Settle};
use crate::wire::{BasicConsume, Method, ReplyCode, ShortStr};

/// The reply to a synchronous call: the reply method and, for `basic.get-ok`, the message.
pub(crate) type CallReply = Result<(Method, Option<Delivery>), Error>;

/// A command from a handle to the connection task.
pub(crate) enum Command {
    /// `channel.open`; answered on `open-ok`.
    OpenChannel {
        reply: oneshot::Sender<Result<Arc<ChannelShared>, Error>>,
    },
    /// A synchronous (or `no_wait`) method; `reply` gets the matching reply, if any.
    Call {
        channel: ChannelId,
        method: Box<Method>,
        reply: Option<oneshot::Sender<CallReply>>,
    },
    /// `basic.consume`; deliveries go to `deliveries` once `consume-ok` names the consumer.
    Consume {
        channel: ChannelId,
        method: Box<BasicConsume>,
        deliveries: DeliverySender,
        end: Arc<ConsumerEnd>,
        reply: oneshot::Sender<Result<ShortStr, Error>>,
    },
    /// `basic.publish`, in a cell of its channel's pool ([`PublishCell`]): in confirm
    /// mode the publish's [`Confirmation`](super::Confirmation) waits on the same cell,
    /// and its window slot is held until the confirm.
    Publish(Arc<PublishCell>),
    /// `basic.ack` / `nack` / `reject` claimed in a channel's ledger wait there: take
    /// them (see [`QueuedSettles`](super::wake::QueuedSettles)).
    Settles,
    /// A settle made through another channel's handle than the delivery's: checked
    /// and written by the state machine, on the delivery's channel.
    SettleElsewhere {
        tag: DeliveryTag,
        how: Settle,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// A consumer handle was dropped: requeue what it had buffered and cancel it.
    ConsumerDropped {
        channel: ChannelId,
        consumer_tag: ShortStr,
        requeue: Vec<DeliveryTag>,
    },
    /// `channel.close`; `reply` on `close-ok`.
    CloseChannel {
        channel: ChannelId,
        code: ReplyCode,
        text: String,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    },
    /// `connection.close`; `reply` on `close-ok` (or the close timeout).
    Close {
        code: ReplyCode,
        text: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// `connection.update-secret`; `reply` on `update-secret-ok`.
    UpdateSecret {
        secret: Box<(Bytes, String)>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
}
