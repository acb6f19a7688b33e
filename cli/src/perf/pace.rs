//! Rates: the `--rate` schedule, a token bucket that paces one task, and a fine timer.
//!
//! Tokio's timer ticks in milliseconds, so a task paced with `tokio::time::sleep` at
//! 10 000 msgs/s sends bursts of ten. [`FineTimer`] is one thread that sleeps until the
//! earliest deadline any task asked for (`thread::park_timeout`, tens of microseconds of
//! slack) and wakes that task: pacing stays steady at sub-millisecond intervals.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Messages per second over time: one rate, or steps that repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSchedule {
    /// (rate, how long); a single step with no length is a constant rate.
    steps: Vec<(f64, Option<Duration>)>,
}

impl RateSchedule {
    /// `R` or `R1:T1,R2:T2,...` with T in seconds (or `500ms`, `10s`, `2m`).
    pub fn parse(v: &str) -> Result<RateSchedule, String> {
        let mut steps = Vec::new();
        for part in v.split(',') {
            let (rate, len) = match part.split_once(':') {
                Some((r, t)) => (r, Some(duration(t)?)),
                None => (part, None),
            };
            let rate: f64 = rate
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: expected RATE or RATE:DURATION"))?;
            if !(rate >= 0.0 && rate.is_finite()) {
                return Err(format!("{part:?}: the rate must be a number >= 0"));
            }
            steps.push((rate, len));
        }
        if steps.len() > 1 && steps.iter().any(|(_, l)| l.is_none()) {
            return Err(format!(
                "{v:?}: in a schedule every step needs a duration (RATE:DURATION)"
            ));
        }
        if steps.iter().all(|(r, _)| *r == 0.0) {
            return Err(format!("{v:?}: at least one rate must be above 0"));
        }
        Ok(RateSchedule { steps })
    }

    /// The length of one pass of the schedule; `None` for a constant rate.
    pub fn period(&self) -> Option<Duration> {
        self.steps.iter().map(|(_, l)| *l).sum()
    }

    /// As given, normalised: `1000` or `1000:10s,10000:10s`.
    pub fn label(&self) -> String {
        let step = |(r, l): &(f64, Option<Duration>)| match l {
            Some(l) => format!("{r}:{}s", l.as_secs_f64()),
            None => format!("{r}"),
        };
        self.steps.iter().map(step).collect::<Vec<_>>().join(",")
    }

    /// The rate at `t` after the start, and when its step ends (`None`: never).
    fn at(&self, t: Duration) -> (f64, Option<Duration>) {
        let Some(period) = self.period() else {
            return (self.steps[0].0, None);
        };
        let pass = t.as_nanos() / period.as_nanos().max(1);
        let mut step_start = period * pass as u32;
        for (rate, len) in &self.steps {
            let end = step_start + len.unwrap_or_default();
            if t < end {
                return (*rate, Some(end));
            }
            step_start = end;
        }
        (self.steps[0].0, Some(step_start + self.steps[0].1.unwrap_or_default()))
    }
}

fn duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else {
        (v, 1.0)
    };
    match num.parse::<f64>() {
        Ok(x) if x > 0.0 && x * scale < 1e9 => Ok(Duration::from_secs_f64(x * scale)),
        _ => Err(format!("{v:?}: expected a positive duration (10, 10s, 500ms, 2m)")),
    }
}

/// Paces one task: [`Pacer::next`] returns when the task may send its next message.
///
/// A token bucket holding at most 10 ms worth of tokens (at least one): a task that fell
/// behind catches up by at most that much, so the rate stays steady, never bursty.
pub struct Pacer {
    schedule: RateSchedule,
    start: Instant,
    /// When the next token is due.
    next: Instant,
}

/// How far behind schedule a task may catch up.
const BUCKET: Duration = Duration::from_millis(10);

impl Pacer {
    pub fn new(schedule: RateSchedule, start: Instant) -> Pacer {
        Pacer {
            schedule,
            start,
            next: start,
        }
    }

    /// The time slot of the next message (now or later).
    fn slot(&mut self, now: Instant) -> Instant {
        loop {
            let (rate, step_end) = self.schedule.at(self.next.saturating_duration_since(self.start));
            if rate > 0.0 {
                let interval = Duration::from_secs_f64(1.0 / rate);
                let behind = now.saturating_duration_since(self.next);
                if behind > BUCKET.max(interval) {
                    self.next = now - BUCKET.max(interval);
                }
                let slot = self.next;
                self.next += interval;
                // A slow step's last interval ends with the step.
                if let Some(end) = step_end {
                    self.next = self.next.min(self.start + end);
                }
                return slot;
            }
            // A pause: the next token is at the end of this step.
            let end = step_end.expect("a zero rate is a step with a length");
            self.next = self.next.max(self.start + end);
        }
    }

    /// Takes the next token: the time at which it may be used.
    pub fn take(&mut self) -> Instant {
        self.slot(Instant::now())
    }

    /// Waits for the next token; gives up early (returns false) once `stop` is true.
    pub async fn next(&mut self, timer: &FineTimer, stop: impl Fn() -> bool) -> bool {
        let slot = self.take();
        loop {
            if stop() {
                return false;
            }
            let now = Instant::now();
            if slot <= now {
                return true;
            }
            // Wake at least every 100 ms to notice `stop`.
            timer.sleep_until(slot.min(now + Duration::from_millis(100))).await;
        }
    }
}

/// A timer thread with sub-millisecond resolution, shared by every task of the run.
#[derive(Clone)]
pub struct FineTimer {
    inner: Arc<TimerInner>,
}

struct TimerInner {
    /// Deadlines not yet due, earliest first.
    heap: Mutex<BinaryHeap<Entry>>,
    thread: OnceLock<Thread>,
}

struct Entry(Reverse<Instant>, u64, oneshot::Sender<()>);

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// Waits below this are not worth a wake-up: the task goes on at once.
const SLACK: Duration = Duration::from_micros(20);
/// How late Linux wakes a sleeping thread (its default timer slack): the timer thread
/// parks this much less than the wait, so that deadlines are met, not overshot.
const WAKE_LATENESS: Duration = Duration::from_micros(50);

impl FineTimer {
    /// Starts the timer thread; it ends when the last handle is dropped.
    pub fn start() -> FineTimer {
        let inner = Arc::new(TimerInner {
            heap: Mutex::new(BinaryHeap::new()),
            thread: OnceLock::new(),
        });
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new()
            .name("warren-perf-timer".into())
            .spawn(move || {
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    let now = Instant::now();
                    let wait = {
                        let mut heap = inner.heap.lock().expect("timer heap");
                        while heap.peek().is_some_and(|e| e.0.0 <= now + SLACK) {
                            let Entry(.., tx) = heap.pop().expect("peeked");
                            let _ = tx.send(());
                        }
                        heap.peek().map(|e| e.0.0 - now)
                    };
                    drop(inner);
                    // Park even with nothing due, so a dropped timer is noticed.
                    let wait = wait.map_or(Duration::from_millis(100), |w| w.saturating_sub(WAKE_LATENESS));
                    std::thread::park_timeout(wait);
                }
            })
            .expect("spawn the timer thread");
        let _ = inner.thread.set(handle.thread().clone());
        FineTimer { inner }
    }

    /// Returns at `deadline` (give or take tens of microseconds).
    pub async fn sleep_until(&self, deadline: Instant) {
        if deadline <= Instant::now() + SLACK {
            return;
        }
        let (tx, rx) = oneshot::channel();
        let earliest = {
            let mut heap = self.inner.heap.lock().expect("timer heap");
            static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            heap.push(Entry(Reverse(deadline), seq, tx));
            heap.peek().map(|e| e.1) == Some(seq)
        };
        if earliest {
            if let Some(t) = self.inner.thread.get() {
                t.unpark();
            }
        }
        let _ = rx.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedules() {
        let s = RateSchedule::parse("1000").unwrap();
        assert_eq!((s.period(), s.at(Duration::from_secs(99))), (None, (1000.0, None)));
        let s = RateSchedule::parse("1000:10s,10000:500ms,0:1m").unwrap();
        assert_eq!(s.period(), Some(Duration::from_millis(70_500)));
        assert_eq!(s.label(), "1000:10s,10000:0.5s,0:60s");
        assert_eq!(s.at(Duration::from_secs(3)), (1000.0, Some(Duration::from_secs(10))));
        assert_eq!(s.at(Duration::from_millis(10_200)).0, 10000.0);
        assert_eq!(s.at(Duration::from_secs(11)).0, 0.0);
        // The schedule repeats.
        assert_eq!(s.at(Duration::from_millis(70_500 + 10_100)).0, 10000.0);
        for bad in ["", "x", "-5", "100,200", "0", "0:1s,0:2s", "5:0s", "5:xs"] {
            assert!(RateSchedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pacer_slots_follow_the_rate() {
        let start = Instant::now();
        let mut p = Pacer::new(RateSchedule::parse("1000:1s,4000:1s").unwrap(), start);
        // Asking at the start every time (no lateness): slots are 1 ms apart, then 250 µs.
        let slots: Vec<Duration> = (0..2000).map(|_| p.slot(start) - start).collect();
        assert_eq!(slots[1], Duration::from_millis(1));
        assert_eq!(slots[999], Duration::from_millis(999));
        assert_eq!(slots[1000], Duration::from_secs(1));
        assert_eq!(slots[1001] - slots[1000], Duration::from_micros(250));
    }

    #[test]
    fn pacer_catches_up_at_most_one_bucket() {
        let start = Instant::now();
        let mut p = Pacer::new(RateSchedule::parse("1000").unwrap(), start);
        let late = start + Duration::from_secs(5);
        let mut n = 0;
        while p.slot(late) <= late {
            n += 1;
        }
        assert!((10..=11).contains(&n), "{n} tokens after 5 s of silence");
    }

    #[test]
    fn pauses_skip_to_the_next_step() {
        let start = Instant::now();
        let mut p = Pacer::new(RateSchedule::parse("0:1s,10:1s").unwrap(), start);
        assert_eq!(p.slot(start) - start, Duration::from_secs(1));
        assert_eq!(p.slot(start) - start, Duration::from_millis(1100));
    }

    #[test]
    fn fine_timer_wakes_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let t = FineTimer::start();
            let start = Instant::now();
            let (a, b) = tokio::join!(
                t.sleep_until(start + Duration::from_micros(3000)),
                t.sleep_until(start + Duration::from_micros(700))
            );
            let _ = (a, b);
            assert!(start.elapsed() >= Duration::from_micros(3000));
        });
    }
}
