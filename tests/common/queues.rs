//! Queue helpers shared by `tests/common` and `tests/fault_support` (included by path).

use warren::Error;
use warren::client::{Channel, QueueDeclareOptions, QueueInfo};
use warren::wire::FieldTable;

/// A passive `queue.declare`: the queue's counts, or the error (404) if it is not there.
/// Also a round trip on `ch`: everything sent on it before has reached the broker.
pub async fn passive_declare(ch: &Channel, queue: &str) -> Result<QueueInfo, Error> {
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(queue, options, FieldTable::new()).await
}
