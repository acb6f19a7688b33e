//! Where a connection is: [`ConnectionState`], and the stream of its changes
//! ([`StateChanges`]).

use tokio::sync::broadcast;

use crate::error::Error;
use crate::proto::RecoveryReport;

/// The state of a connection, as [`Connection::state`](super::Connection::state) reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Open and usable.
    Connected,
    /// Open, but the server blocks publishing (`connection.blocked`, e.g. a memory alarm):
    /// publishes wait, acks and everything else flow.
    Blocked {
        /// The server's reason.
        reason: String,
    },
    /// The connection was lost and is being re-established. Publishes wait (or fail fast,
    /// [`RecoveryConfig::publish_wait`](super::RecoveryConfig::publish_wait)); acks of earlier deliveries fail with
    /// [`Error::StaleDelivery`].
    Recovering {
        /// The attempt under way (1-based).
        attempt: u32,
        /// Why the connection was lost.
        cause: Error,
    },
    /// Recovered: open and usable again, on a new connection generation.
    Recovered(Box<RecoveryReport>),
    /// Closed for good: by the application ([`Error::ConnectionClosed`] by the client with
    /// 200), by a server error that will not heal (403, 530...), or because recovery is off
    /// or gave up.
    Failed(Error),
}

impl ConnectionState {
    /// True while the connection can carry commands (connected, blocked or recovered).
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            ConnectionState::Connected | ConnectionState::Blocked { .. } | ConnectionState::Recovered(_)
        )
    }

    /// True while a recovery is under way.
    pub fn is_recovering(&self) -> bool {
        matches!(self, ConnectionState::Recovering { .. })
    }
}

/// Every state change of a connection, in order
/// ([`Connection::state_changes`](super::Connection::state_changes)).
#[derive(Debug)]
pub struct StateChanges {
    rx: broadcast::Receiver<ConnectionState>,
}

impl StateChanges {
    pub(crate) fn new(rx: broadcast::Receiver<ConnectionState>) -> Self {
        StateChanges { rx }
    }

    /// The next state; `None` once the connection is gone. A reader that falls more than
    /// 64 changes behind skips to the oldest one still kept.
    pub async fn next(&mut self) -> Option<ConnectionState> {
        loop {
            match self.rx.recv().await {
                Ok(state) => return Some(state),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_say_what_they_allow() {
        assert!(ConnectionState::Connected.is_open());
        assert!(ConnectionState::Blocked { reason: "mem".into() }.is_open());
        let recovering = ConnectionState::Recovering {
            attempt: 1,
            cause: Error::connection_lost("x", None),
        };
        assert!(recovering.is_recovering() && !recovering.is_open());
        assert!(!ConnectionState::Failed(Error::Closed).is_open());
    }
}
