//! The client's timers: a FIFO for timers that come in order, a min-heap for the rest, both
//! with lazy deletion.
//!
//! Most timers are request deadlines of the same length, pushed in the order requests arrive,
//! so they are due in the order they were pushed: those go to the back of a FIFO in O(1); a
//! timer due earlier than the FIFO's back goes to the heap. Completing a request leaves its
//! deadline where it is; entries are checked when they reach the front, and both are rebuilt
//! from live entries whenever dead ones dominate, so memory stays proportional to live work.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
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
    /// A check of a connection whose head reply may be abandoned (see `stall.rs`).
    Stall(Id),
}

/// The timers.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Timers pushed in non-decreasing order of their instants.
    fifo: VecDeque<(Instant, Timer)>,
    /// The others.
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// Live entries counted at the last compaction.
    live_hint: usize,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, timer: Timer) {
        if self.fifo.back().is_none_or(|(last, _)| *last <= at) {
            self.fifo.push_back((at, timer));
        } else {
            self.heap.push(Reverse((at, timer)));
        }
    }

    fn len(&self) -> usize {
        self.fifo.len() + self.heap.len()
    }

    /// The earliest timer's instant, and whether it is the FIFO's front (else the heap's top).
    fn earliest(&self) -> Option<(Instant, bool)> {
        let fifo = self.fifo.front().map(|(at, _)| *at);
        let heap = self.heap.peek().map(|Reverse((at, _))| *at);
        match (fifo, heap) {
            (Some(a), Some(b)) => Some(if a <= b { (a, true) } else { (b, false) }),
            (Some(a), None) => Some((a, true)),
            (None, b) => b.map(|b| (b, false)),
        }
    }

    /// The next timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.earliest()? {
            (at, _) if at > now => None,
            (_, true) => self.fifo.pop_front().map(|(_, t)| t),
            (_, false) => self.heap.pop().map(|Reverse((_, t))| t),
        }
    }

    /// The earliest live timer, dropping dead ones on the way; compacts when most are dead.
    pub(crate) fn peek_valid(&mut self, live: impl Fn(&Timer) -> bool) -> Option<Instant> {
        while self.fifo.front().is_some_and(|(_, t)| !live(t)) {
            self.fifo.pop_front();
        }
        while self.heap.peek().is_some_and(|Reverse((_, t))| !live(t)) {
            self.heap.pop();
        }
        if self.len() > 2 * self.live_hint + 4096 {
            self.compact(&live);
        }
        self.earliest().map(|(at, _)| at)
    }

    fn compact(&mut self, live: &impl Fn(&Timer) -> bool) {
        self.fifo.retain(|(_, t)| live(t));
        let kept: Vec<_> =
            std::mem::take(&mut self.heap).into_iter().filter(|Reverse((_, t))| live(t)).collect();
        self.heap = kept.into();
        self.live_hint = self.len();
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
        assert!(timers.len() <= 2 * live.len() + 4096, "compaction keeps memory near the live count");
        assert_eq!(timers.pop_due(t0), Some(Timer::Deadline(live[0])));
        assert_eq!(timers.pop_due(t0), None, "nothing else is due yet");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn timers_out_of_order_come_out_in_order() {
        use core::time::Duration;
        let t0 = Instant::now();
        let mut ids = Arena::default();
        let mut timers = Timers::default();
        // Deadlines mostly in order, some earlier (short connect timers), some equal.
        let offsets = [50u64, 60, 10, 60, 70, 5, 80, 80, 30, 100];
        let mut want = Vec::new();
        for (i, ms) in offsets.iter().enumerate() {
            let id = ids.insert(i as u64);
            timers.push(t0 + Duration::from_millis(*ms), Timer::Deadline(id));
            want.push((*ms, id));
        }
        want.sort();
        assert_eq!(timers.peek_valid(|_| true), Some(t0 + Duration::from_millis(5)));
        assert_eq!(timers.pop_due(t0 + Duration::from_millis(4)), None);
        let mut got = Vec::new();
        while let Some(Timer::Deadline(id)) = timers.pop_due(t0 + Duration::from_millis(1000)) {
            got.push(id);
        }
        let want_ids: Vec<Id> = want.iter().map(|(_, id)| *id).collect();
        // Equal instants may come out in either order; compare instants, then the sets.
        assert_eq!(got.len(), want_ids.len());
        let at = |id: &Id| want.iter().find(|(_, w)| w == id).map(|(ms, _)| *ms);
        let got_ms: Vec<_> = got.iter().map(at).collect();
        let want_ms: Vec<_> = want_ids.iter().map(at).collect();
        assert_eq!(got_ms, want_ms);
        assert_eq!(timers.peek_valid(|_| true), None);
    }
}
