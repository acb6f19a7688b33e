//! Read coalescing: while deliveries or confirms stream in, the driver reads at most once
//! per window ([`Config::read_coalescing`](super::Config::read_coalescing); the tokio
//! client's `ConnectionConfig::read_coalescing`). The state machine decides, from what it
//! knows of each channel (prefetch, unacked deliveries, unconfirmed publishes), and the
//! driver leaves the socket alone for the [`Pause`] it gets from
//! [`Connection::read_pause`](super::Connection::read_pause).
//!
//! RabbitMQ writes a streaming consumer's deliveries, and a busy publisher's confirms, a
//! few at a time, and every write that finds the task asleep costs two thread wake-ups
//! (the task's, then the consumer's or publisher's) and a small read. Leaving the socket
//! alone for a millisecond after such a read lets the next writes pile up in the
//! kernel: one read, one hand-off and one wake-up then carry many of them. Acks,
//! publishes and every other command still go out at once.
//!
//! The pause is only taken when nothing can be held up by it but the stream itself: the
//! previous stream read was recent (a stream, not a trickle: a lone message or confirm
//! is never delayed); the stream is fast enough that a window gathers many items (a
//! steady 10 000 msgs/s, a message a read, is not delayed: a pause would set its
//! latency and save few wake-ups); no call or secret update waits for its reply; and
//! what the pause is expected to hold back, at the rate of the last reads, fits in the
//! headroom of the channels that got some: what the prefetch has left, for a consumer
//! (the broker stops once it is used up; acks go on during the pause, so this holds
//! even if none went out); half the publishes still unconfirmed, for a publisher (else
//! it could run out of window and wait).
//!
//! During a pause the task is deaf (see `TaskWake` in `client/handoff.rs`) and, with
//! nothing to write, its thread sleeps outside the runtime until the pause ends or a
//! sender calls it: in the runtime's epoll wait, every segment the broker writes during
//! the pause would wake the thread for nothing. There the pause lasts exactly the
//! longest it was checked for ([`Pause::latest`]): a window plus a tick, or a tick for
//! a short one, where the runtime's timer would end it somewhere on the way.

use std::time::{Duration, Instant};

/// Delivery reads closer together than this many windows make a stream.
const STREAM_GAP: u32 = 4;

/// A pause is taken only for a stream that brings at least this many items per window.
/// Below that (10 000 msgs/s against a 1 ms window, a message a read) a pause saves few
/// wake-ups and would set the stream's latency: each item would wait for the pause.
const MIN_BATCH: f64 = 16.0;

/// The runtime's timer fires on ticks of this length: a pause until `t` lasts until
/// the first tick at or after `t`.
const TICK: Duration = Duration::from_millis(1);

/// The most a pause may leave to the kernel's socket buffer: a fraction of the
/// 128 KiB that Linux starts a TCP receive buffer with. A faster stream would fill the
/// buffer and stall the sender for the rest of the pause.
const PAUSE_BYTES: f64 = 64.0 * 1024.0;

/// Deliveries and confirms one read handed out.
#[derive(Debug, Default)]
pub(crate) struct Streamed {
    pub(crate) count: usize,
    /// The fewest more a channel that got some can take before anyone may wait (its
    /// prefetch used up; half its unconfirmed publishes confirmed); `None`: no limit.
    headroom: Option<usize>,
}

impl Streamed {
    /// Counts one, for a channel with `headroom` (`None`: no limit).
    pub(crate) fn add(&mut self, headroom: Option<usize>) {
        self.count += 1;
        if let Some(h) = headroom {
            self.headroom = Some(self.headroom.map_or(h, |x| x.min(h)));
        }
    }
}

/// A read pause: leave the socket alone until then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// For the runtime's timer, which fires on the first tick at or after its deadline:
    /// set so that it fires by `latest`.
    pub timer: Instant,
    /// The longest the pause may last, what the headroom was checked for: a thread that
    /// sleeps outside the runtime (with a finer clock) sleeps until then.
    pub latest: Instant,
}

/// When the task may leave the socket alone after a read that handed deliveries or
/// confirms out.
#[derive(Debug)]
pub(crate) struct ReadPacing {
    window: Option<Duration>,
    /// The last read that handed deliveries or confirms out.
    last: Option<Instant>,
    /// Items, and bytes, per second over the last reads of the stream (moving averages).
    rate: f64,
    byte_rate: f64,
}

impl ReadPacing {
    /// Pauses of `window` (`None` or zero: never pause).
    pub(crate) fn new(window: Option<Duration>) -> Self {
        ReadPacing {
            window: window.filter(|w| !w.is_zero()),
            last: None,
            rate: 0.0,
            byte_rate: 0.0,
        }
    }

    /// A read of `bytes` handed `streamed` out at `now`; `awaited`: a reply is
    /// awaited. Returns the pause to take, if any.
    pub(crate) fn after_stream(
        &mut self,
        now: Instant,
        bytes: usize,
        streamed: Streamed,
        awaited: bool,
    ) -> Option<Pause> {
        let Streamed { count, headroom } = streamed;
        let window = self.window?;
        let since = now.saturating_duration_since(self.last.replace(now)?);
        if since >= window * STREAM_GAP {
            // A new stream: no rate yet.
            self.rate = 0.0;
            self.byte_rate = 0.0;
            return None;
        }
        // This read's rates, over at least a tenth of a window so that a burst of reads
        // does not read as a flood.
        let over = since.max(window / 10).as_secs_f64();
        average(&mut self.rate, count as f64 / over);
        average(&mut self.byte_rate, bytes as f64 / over);
        if awaited || self.rate * window.as_secs_f64() < MIN_BATCH {
            return None;
        }
        // Would a pause of at most `longest` hold back only what fits?
        let fits = |longest: Duration| {
            let longest = longest.as_secs_f64();
            self.byte_rate * longest <= PAUSE_BYTES
                && headroom.is_none_or(|headroom| self.rate * longest <= headroom as f64)
        };
        if fits(window + TICK) {
            Some(Pause {
                timer: now + window,
                latest: now + window + TICK,
            })
        } else if fits(TICK) {
            // A shorter pause: until the timer's next tick.
            Some(Pause {
                timer: now + Duration::from_nanos(1),
                latest: now + TICK,
            })
        } else {
            None
        }
    }
}

/// Moves the moving average `avg` towards `sample` (or starts it there).
fn average(avg: &mut f64, sample: f64) {
    *avg = if *avg == 0.0 {
        sample
    } else {
        0.75 * *avg + 0.25 * sample
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A full pause from `t`: a window, up to a tick more.
    fn full(t: Instant) -> Option<Pause> {
        Some(Pause {
            timer: t + MS,
            latest: t + MS + TICK,
        })
    }

    /// A pause from `t` till the timer's next tick, a tick at most.
    fn short(t: Instant) -> Option<Pause> {
        Some(Pause {
            timer: t + Duration::from_nanos(1),
            latest: t + TICK,
        })
    }

    /// `count` items of channels with `headroom`.
    fn tally(count: usize, headroom: Option<usize>) -> Streamed {
        Streamed { count, headroom }
    }

    #[test]
    fn the_tightest_channel_sets_the_headroom() {
        let mut s = Streamed::default();
        s.add(None);
        assert_eq!(s.headroom, None);
        s.add(Some(40));
        s.add(Some(7));
        s.add(None);
        s.add(Some(9));
        assert_eq!((s.count, s.headroom), (5, Some(7)));
    }

    #[test]
    fn pauses_only_inside_a_stream() {
        let t0 = Instant::now();
        let mut p = ReadPacing::new(Some(MS));
        assert_eq!(
            p.after_stream(t0, 1000, tally(10, None), false),
            None,
            "a first read is not a stream"
        );
        let t1 = t0 + MS / 4;
        assert_eq!(p.after_stream(t1, 1000, tally(10, None), false), full(t1));
        let t2 = t1 + MS * 2;
        assert_eq!(
            p.after_stream(t2, 1000, tally(10, None), false),
            full(t2),
            "a pause does not break the stream"
        );
        let t3 = t2 + MS * 10;
        assert_eq!(
            p.after_stream(t3, 1000, tally(10, None), false),
            None,
            "a trickle is never delayed"
        );
    }

    #[test]
    fn a_steady_stream_of_single_items_is_never_delayed() {
        // 1 000 and 10 000 a second, one per read: each would wait for the pause.
        for gap in [MS, MS / 10] {
            let mut p = ReadPacing::new(Some(MS));
            let mut t = Instant::now();
            for i in 0..100 {
                assert_eq!(
                    p.after_stream(t, 300, tally(1, None), false),
                    None,
                    "read {i}, gap {gap:?}"
                );
                t += gap;
            }
        }
        // 10 000 a second in pairs: still below a batch a window.
        let mut p = ReadPacing::new(Some(MS));
        let mut t = Instant::now();
        for i in 0..100 {
            assert_eq!(p.after_stream(t, 600, tally(2, None), false), None, "read {i}");
            t += MS / 5;
        }
        // 40 000 a second, 8 a read: a pause gathers 40.
        let mut p = ReadPacing::new(Some(MS));
        p.after_stream(t, 2400, tally(8, None), false);
        let t1 = t + MS / 5;
        assert_eq!(p.after_stream(t1, 2400, tally(8, None), false), full(t1));
    }

    #[test]
    fn never_pauses_while_a_reply_is_awaited() {
        let t0 = Instant::now();
        let mut p = ReadPacing::new(Some(MS));
        p.after_stream(t0, 1000, tally(10, None), false);
        assert_eq!(p.after_stream(t0 + MS / 4, 1000, tally(10, None), true), None);
        let t1 = t0 + MS / 2;
        assert_eq!(
            p.after_stream(t1, 1000, tally(10, None), false),
            full(t1),
            "and again once not"
        );
    }

    #[test]
    fn pauses_only_if_the_prefetch_holds_what_the_pause_brings() {
        let t0 = Instant::now();
        let mut p = ReadPacing::new(Some(MS));
        p.after_stream(t0, 1000, tally(16, Some(40)), false);
        // 16 per quarter window: a pause of up to 2 windows brings 128, one up to the
        // next tick 64.
        let t1 = t0 + MS / 4;
        assert_eq!(p.after_stream(t1, 1000, tally(16, Some(63)), false), None);
        let t2 = t1 + MS / 4;
        assert_eq!(
            p.after_stream(t2, 1000, tally(16, Some(64)), false),
            short(t2),
            "only till the next tick"
        );
        let t2 = t2 + MS / 4;
        assert_eq!(p.after_stream(t2, 1000, tally(16, Some(127)), false), short(t2));
        let t2 = t2 + MS / 4;
        assert_eq!(p.after_stream(t2, 1000, tally(16, Some(128)), false), full(t2));
        // One small read does not make the stream slow: the rate is an average.
        let t3 = t2 + MS / 4;
        assert_eq!(p.after_stream(t3, 1000, tally(2, Some(40)), false), None);
        // A burst of reads counts each over a tenth of a window at least.
        let mut p = ReadPacing::new(Some(MS));
        p.after_stream(t0, 1000, tally(5, None), false);
        let t1 = t0 + Duration::from_micros(1);
        assert_eq!(p.after_stream(t1, 1000, tally(5, Some(100)), false), full(t1));
        let t2 = t1 + Duration::from_micros(1);
        assert_eq!(p.after_stream(t2, 1000, tally(5, Some(49)), false), None);
    }

    #[test]
    fn never_pauses_a_stream_that_would_fill_the_socket_buffer() {
        let t0 = Instant::now();
        let mut p = ReadPacing::new(Some(MS));
        p.after_stream(t0, 8_000, tally(20, None), false);
        // 8 000 bytes a quarter window: 64 000 in 2 windows, under 64 KiB.
        let t1 = t0 + MS / 4;
        assert_eq!(p.after_stream(t1, 8_000, tally(20, None), false), full(t1));
        let mut p = ReadPacing::new(Some(MS));
        p.after_stream(t0, 9_000, tally(20, None), false);
        assert_eq!(
            p.after_stream(t1, 9_000, tally(20, None), false),
            short(t1),
            "72 000 would not fit, 36 000 till the next tick do"
        );
        let mut p = ReadPacing::new(Some(MS));
        p.after_stream(t0, 17_000, tally(20, None), false);
        assert_eq!(
            p.after_stream(t1, 17_000, tally(20, None), false),
            None,
            "68 000 in a tick"
        );
    }

    #[test]
    fn off_when_disabled() {
        let t0 = Instant::now();
        for window in [None, Some(Duration::ZERO)] {
            let mut p = ReadPacing::new(window);
            for i in 0..4 {
                assert_eq!(p.after_stream(t0 + MS / 10 * i, 1000, tally(10, None), false), None);
            }
        }
    }
}
