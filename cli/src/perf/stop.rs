//! The end of publishing (`--duration` over, or Ctrl-C), which producers may be waiting
//! through: a broker that blocked publishing (`connection.blocked`) neither takes a
//! publish nor confirms one until its alarm clears, and a run must still end on time.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// When publishing stopped, shared by every producer.
pub struct Stop {
    /// Read on every publish, so kept apart from the watch (which takes a lock).
    stopped: AtomicBool,
    at: watch::Sender<Option<Instant>>,
}

impl Default for Stop {
    fn default() -> Self {
        Self {
            stopped: AtomicBool::new(false),
            at: watch::Sender::new(None),
        }
    }
}

impl Stop {
    /// Stops publishing now; a second call changes nothing.
    pub fn stop(&self) {
        self.at.send_if_modified(|at| {
            if at.is_some() {
                return false;
            }
            *at = Some(Instant::now());
            true
        });
        self.stopped.store(true, Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Relaxed)
    }

    /// Ready once publishing stopped: a publish still waiting (for the broker to unblock,
    /// for a window slot) is given up then, before anything was sent.
    pub async fn stopped(&self) {
        self.stopped_at().await;
    }

    /// Ready `grace` after publishing stopped: confirms not in by then are given up, their
    /// outcome unknown (`--drain-timeout`).
    pub async fn given_up(&self, grace: Duration) {
        let at = self.stopped_at().await;
        tokio::time::sleep_until(at + grace).await;
    }

    async fn stopped_at(&self) -> Instant {
        let mut rx = self.at.subscribe();
        let at = *rx.wait_for(Option::is_some).await.expect("the sender lives in self");
        at.expect("waited for Some")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_end_at_the_stop_and_after_the_grace() {
        let stop = std::sync::Arc::new(Stop::default());
        assert!(!stop.is_stopped());
        let start = Instant::now();
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move {
                stop.stopped().await;
                let stopped = Instant::now();
                stop.given_up(Duration::from_secs(2)).await;
                (stopped, Instant::now())
            })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop.stop();
        assert!(stop.is_stopped());
        let (stopped, given_up) = waiter.await.unwrap();
        assert_eq!(stopped - start, Duration::from_secs(5));
        assert_eq!(given_up - start, Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_stop_counts() {
        let stop = Stop::default();
        let start = Instant::now();
        stop.stop();
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.stop();
        stop.given_up(Duration::from_secs(1)).await;
        // Already past: ready at once, not 1 s after the second call.
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
    }
}
