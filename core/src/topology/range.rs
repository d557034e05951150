//! Inclusive slot ranges.

use core::fmt;

use super::TopologyError;
use crate::{Slot, Value};

/// An inclusive range of slots, `start..=end`, never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotRange {
    start: Slot,
    end: Slot,
}

impl SlotRange {
    /// The range `start..=end`, or `None` when `start > end`.
    #[must_use]
    pub fn new(start: Slot, end: Slot) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    /// The range holding one slot.
    #[must_use]
    pub const fn single(slot: Slot) -> Self {
        Self { start: slot, end: slot }
    }

    /// The first slot.
    #[must_use]
    pub const fn start(self) -> Slot {
        self.start
    }

    /// The last slot (inclusive).
    #[must_use]
    pub const fn end(self) -> Slot {
        self.end
    }

    /// How many slots the range holds (at least 1).
    #[must_use]
    pub const fn len(self) -> usize {
        self.end.index() - self.start.index() + 1
    }

    /// Always `false`: a `SlotRange` holds at least one slot. Present for API symmetry.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        false
    }

    /// Whether `slot` is in the range.
    #[must_use]
    pub fn contains(self, slot: Slot) -> bool {
        self.start <= slot && slot <= self.end
    }

    /// The slots of the range, in order.
    pub fn slots(self) -> impl Iterator<Item = Slot> {
        (self.start.get()..=self.end.get()).filter_map(Slot::new)
    }

    /// Parses a `start`, `end` pair of integers (or decimal strings).
    pub(crate) fn parse(start: &Value, end: &Value) -> Result<Self, TopologyError> {
        let (s, e) = (start.as_int(), end.as_int());
        let bad = || TopologyError::BadSlotRange { start: s.unwrap_or(-1), end: e.unwrap_or(-1) };
        let slot = |n: Option<i64>| n.and_then(|n| u16::try_from(n).ok()).and_then(Slot::new);
        match (slot(s), slot(e)) {
            (Some(s), Some(e)) => Self::new(s, e).ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// Sorts ranges and merges adjacent ones, so that one set of slots has one spelling.
/// Fails on overlap.
pub(crate) fn normalize(ranges: &mut Vec<SlotRange>) -> Result<(), TopologyError> {
    ranges.sort_unstable();
    let mut out: Vec<SlotRange> = Vec::with_capacity(ranges.len());
    for r in ranges.drain(..) {
        match out.last_mut() {
            Some(last) if r.start <= last.end => {
                return Err(TopologyError::OverlappingSlots { slot: r.start.get() });
            }
            Some(last) if r.start.get() == last.end.get().saturating_add(1) => last.end = r.end,
            _ => out.push(r),
        }
    }
    *ranges = out;
    Ok(())
}

/// The union of `ranges` (overlapping or not), sorted and merged.
pub(crate) fn union(mut ranges: Vec<SlotRange>) -> Vec<SlotRange> {
    ranges.sort_unstable();
    let mut out: Vec<SlotRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start.get() <= last.end.get().saturating_add(1) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Removes `slot` from sorted, merged `ranges` (splitting a range when needed).
pub(crate) fn remove_slot(ranges: &mut Vec<SlotRange>, slot: Slot) {
    let Some(i) = ranges.iter().position(|r| r.contains(slot)) else { return };
    let Some(r) = ranges.get(i).copied() else { return };
    let before = slot.get().checked_sub(1).and_then(Slot::new).and_then(|e| SlotRange::new(r.start, e));
    let after = slot.get().checked_add(1).and_then(Slot::new).and_then(|s| SlotRange::new(s, r.end));
    let replacement: Vec<SlotRange> = before.into_iter().chain(after).collect();
    ranges.splice(i..=i, replacement);
}

/// Adds `slot` to sorted, merged `ranges`, merging with its neighbours.
pub(crate) fn insert_slot(ranges: &mut Vec<SlotRange>, slot: Slot) {
    let i = ranges.partition_point(|r| r.end < slot);
    if ranges.get(i).is_some_and(|r| r.contains(slot)) {
        return;
    }
    let joins_prev = i
        .checked_sub(1)
        .and_then(|p| ranges.get(p))
        .is_some_and(|p| p.end.get().saturating_add(1) == slot.get());
    let joins_next = ranges.get(i).is_some_and(|n| slot.get().saturating_add(1) == n.start.get());
    match (joins_prev, joins_next) {
        (true, true) => {
            let next_end = ranges.get(i).map(|n| n.end);
            if let (Some(end), Some(prev)) = (next_end, i.checked_sub(1).and_then(|p| ranges.get_mut(p))) {
                prev.end = end;
                ranges.remove(i);
            }
        }
        (true, false) => {
            if let Some(prev) = i.checked_sub(1).and_then(|p| ranges.get_mut(p)) {
                prev.end = slot;
            }
        }
        (false, true) => {
            if let Some(next) = ranges.get_mut(i) {
                next.start = slot;
            }
        }
        (false, false) => ranges.insert(i, SlotRange::single(slot)),
    }
}
