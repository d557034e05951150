//! The client's timers: a min-heap with lazy deletion.
//!
//! Completing a request leaves its deadline in the heap; entries are checked when they reach
//! the top, and the heap is rebuilt from live entries whenever dead ones dominate, so memory
//! stays proportional to live work.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::arena::Id;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A request's deadline.
    Deadline(Id),
    /// A sub-request's retry after backoff.
    Retry(Id),
    /// A connection's connect-and-handshake deadline.
    Connect(Id, Instant),
    /// The topology query's deadline (the connection and the refresh's start).
    Refresh(Id, Instant),
}

/// A min-heap of timers.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// Live entries counted at the last compaction.
    live_hint: usize,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// The next timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, t))| t),
            _ => None,
        }
    }

    /// The earliest live timer, dropping dead ones on the way; compacts when most are dead.
    pub(crate) fn peek_valid(&mut self, live: impl Fn(&Timer) -> bool) -> Option<Instant> {
        while let Some(Reverse((at, t))) = self.heap.peek() {
            if live(t) {
                let at = *at;
                if self.heap.len() > 2 * self.live_hint + 4096 {
                    self.compact(&live);
                }
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    fn compact(&mut self, live: &impl Fn(&Timer) -> bool) {
        let kept: Vec<_> =
            std::mem::take(&mut self.heap).into_iter().filter(|Reverse((_, t))| live(t)).collect();
        self.live_hint = kept.len();
        self.heap = kept.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::arena::Arena;

    #[test]
    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn dead_timers_are_compacted_away() {
        let t0 = Instant::now();
        let mut ids = Arena::default();
        let mut timers = Timers::default();
        let mut live = Vec::new();
        for i in 0..20_000u64 {
            let id = ids.insert(i);
            timers.push(t0 + core::time::Duration::from_millis(i), Timer::Deadline(id));
            if i % 100 == 0 {
                live.push(id);
            }
        }
        let is_live = |t: &Timer| matches!(t, Timer::Deadline(id) if live.contains(id));
        assert_eq!(timers.peek_valid(is_live), Some(t0));
        assert!(timers.heap.len() <= 2 * live.len() + 4096, "compaction keeps memory near the live count");
        assert_eq!(timers.pop_due(t0), Some(Timer::Deadline(live[0])));
        assert_eq!(timers.pop_due(t0), None, "nothing else is due yet");
    }
}
