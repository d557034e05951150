//! How long the drill's own process went without running: a plain thread sleeps `TICK` at a
//! time and records every wake-up that came late by [`LATE`] or more. A client's stall that
//! coincides with such a gap is the machine's (the scheduler ran something else), not the
//! client's: the report says so next to the stall, and the stall still counts against the goal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the thread sleeps each time.
const TICK: Duration = Duration::from_millis(2);
/// A wake-up this late, or later, is recorded.
pub(crate) const LATE: Duration = Duration::from_millis(10);
/// At most this many gaps are kept (a bound on the thread's memory; at 10 ms each, over
/// 16 minutes of starvation).
const MAX_GAPS: usize = 100_000;

/// One stretch in which the thread should have run and did not: µs since the drill's `t0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) start_us: u64,
    pub(crate) len_us: u64,
}

impl Gap {
    pub(crate) const fn end_us(self) -> u64 {
        self.start_us + self.len_us
    }
}

/// The running thread; [`Ticker::stop`] ends it and returns the gaps.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Gap>>,
}

impl Ticker {
    /// Starts the thread; times are counted from `t0`.
    pub(crate) fn start(t0: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let us = move |i: Instant| i.saturating_duration_since(t0).as_micros() as u64;
        let thread = std::thread::spawn(move || {
            let mut gaps = Vec::new();
            let mut last = Instant::now();
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                let now = Instant::now();
                let due = last + TICK;
                let late = now.saturating_duration_since(due);
                if late >= LATE && gaps.len() < MAX_GAPS {
                    gaps.push(Gap { start_us: us(due), len_us: late.as_micros() as u64 });
                }
                last = now;
            }
            gaps
        });
        Self { stop, thread }
    }

    /// Stops the thread; the gaps it saw, in time order.
    pub(crate) fn stop(self) -> Vec<Gap> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// How much of `[from, to]` (µs) the `gaps` cover.
pub(crate) fn covered(gaps: &[Gap], from: u64, to: u64) -> u64 {
    gaps.iter().map(|g| g.end_us().min(to).saturating_sub(g.start_us.max(from))).sum()
}

/// The longest gap that ends after `from` (the whole gap, also a part before `from`), µs.
pub(crate) fn longest_after(gaps: &[Gap], from: u64) -> u64 {
    gaps.iter().filter(|g| g.end_us() > from).map(|g| g.len_us).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_only_the_overlap() {
        let gaps = [Gap { start_us: 100, len_us: 50 }, Gap { start_us: 300, len_us: 100 }];
        assert_eq!(covered(&gaps, 0, 1000), 150);
        assert_eq!(covered(&gaps, 120, 350), 30 + 50);
        assert_eq!(covered(&gaps, 160, 290), 0);
        assert_eq!(longest_after(&gaps, 200), 100);
        assert_eq!(longest_after(&gaps, 500), 0);
    }

    #[test]
    fn a_thread_that_runs_records_no_long_gap() {
        let t = Ticker::start(Instant::now());
        std::thread::sleep(Duration::from_millis(30));
        // A 2-core machine under a test run can delay it: only the bookkeeping is checked.
        let gaps = t.stop();
        assert!(gaps.iter().all(|g| g.len_us >= LATE.as_micros() as u64), "{gaps:?}");
    }
}
