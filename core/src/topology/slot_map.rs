//! [`Topology`]: shards, the 16384-entry slot map, queries and `MOVED` patches.

use std::collections::HashMap;

use super::TopologyError;
use super::node_info::{Health, Node, SkippedNode};
use super::range::{self, SlotRange};
use crate::{NodeAddr, SLOT_COUNT, Slot};

/// The slot map's marker for "no shard owns this slot".
const NONE: u16 = u16::MAX;

/// The most shards a [`Topology`] holds (the slot map stores shard indices as `u16`, with one
/// value reserved for "unowned").
pub const MAX_SHARDS: usize = NONE as usize;

/// A primary, its replicas, and the slots they serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The slots, sorted, with adjacent ranges merged. May be empty (a primary that owns no slots
    /// yet, or one whose last slot moved away).
    pub slots: Vec<SlotRange>,
    /// The primary. It may be [`Health::Failed`]: see [`Topology::primary`].
    pub primary: Node,
    /// The replicas sorted by address, of every health (filter with [`Node::is_online`]).
    pub replicas: Vec<Node>,
}

impl Shard {
    /// The primary followed by the replicas.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        core::iter::once(&self.primary).chain(&self.replicas)
    }

    /// How many slots the shard owns.
    #[must_use]
    pub fn slot_count(&self) -> usize {
        self.slots.iter().map(|r| r.len()).sum()
    }

    fn sort_key(&self) -> (usize, (&NodeAddr, Option<&str>)) {
        let first = self.slots.first().map_or(usize::MAX, |r| r.start().index());
        (first, self.primary.sort_key())
    }

    fn same_layout(&self, other: &Self) -> bool {
        self.slots == other.slots
            && self.primary.same_layout(&other.primary)
            && self.replicas.len() == other.replicas.len()
            && self.replicas.iter().zip(&other.replicas).all(|(a, b)| a.same_layout(b))
    }
}

/// The cluster as one reply described it: shards, and for every slot the shard that owns it.
///
/// Built by [`Topology::from_shards_reply`] or [`Topology::from_slots_reply`] in canonical form:
/// ranges sorted and merged, replicas sorted by address, shards sorted by their first slot (then
/// by primary address), so replies that list the same cluster in another order compare equal.
/// Equality ignores [`Node::replication_offset`] (it changes with every write), the
/// [`epoch`](Self::epoch) and the [`skipped`](Self::skipped) list.
///
/// A standalone node's topology ([`Topology::standalone`], [`Topology::from_info_reply`]) is
/// one shard owning every slot.
///
/// Coverage may be partial: a slot no shard owns has no [`primary`](Self::primary); requests for
/// it wait for a refresh or fail, and the other slots keep working.
#[derive(Clone, Debug)]
pub struct Topology {
    shards: Vec<Shard>,
    /// Slot → index into `shards`, or [`NONE`].
    map: Box<[u16; SLOT_COUNT as usize]>,
    /// Primary address → shard index, for `patch_slot`.
    by_primary: HashMap<NodeAddr, u16>,
    skipped: Vec<SkippedNode>,
    epoch: u64,
    /// A standalone node's topology (see [`Topology::standalone`]).
    pub(super) standalone: bool,
}

impl PartialEq for Topology {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.canonical_order(), other.canonical_order());
        self.standalone == other.standalone
            && a.len() == b.len()
            && a.iter().zip(&b).all(|(x, y)| x.same_layout(y))
    }
}

impl Eq for Topology {}

impl Topology {
    /// A topology from shards built by hand (tests, simulations, static configurations). The
    /// shards are put in canonical form; overlapping slots, more than [`MAX_SHARDS`] shards, or
    /// no owned slot at all are errors, as for a reply.
    pub fn from_shards(shards: Vec<Shard>) -> Result<Self, TopologyError> {
        Self::build(shards, Vec::new())
    }

    /// Builds the canonical topology from parsed shards. Fails on overlapping slots, too many
    /// shards, or when no slot is owned.
    pub(crate) fn build(mut shards: Vec<Shard>, skipped: Vec<SkippedNode>) -> Result<Self, TopologyError> {
        if shards.len() > MAX_SHARDS {
            return Err(TopologyError::TooManyShards { limit: MAX_SHARDS });
        }
        for shard in &mut shards {
            range::normalize(&mut shard.slots)?;
            shard.replicas.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        }
        shards.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let mut map = Box::new([NONE; SLOT_COUNT as usize]);
        let mut covered = 0usize;
        for (i, shard) in shards.iter().enumerate() {
            let idx = u16::try_from(i).map_err(|_| TopologyError::TooManyShards { limit: MAX_SHARDS })?;
            for r in &shard.slots {
                for slot in r.slots() {
                    let cell = &mut map[slot.index()];
                    if *cell != NONE {
                        return Err(TopologyError::OverlappingSlots { slot: slot.get() });
                    }
                    *cell = idx;
                    covered += 1;
                }
            }
        }
        if covered == 0 {
            return Err(TopologyError::Empty);
        }
        let mut by_primary: HashMap<NodeAddr, u16> = HashMap::with_capacity(shards.len());
        for (i, shard) in shards.iter().enumerate() {
            let Ok(idx) = u16::try_from(i) else { break };
            let failed =
                |j: u16| shards.get(usize::from(j)).is_some_and(|s| s.primary.health == Health::Failed);
            let keep_old = by_primary.get(&shard.primary.addr).is_some_and(|&j| !failed(j));
            if !keep_old {
                by_primary.insert(shard.primary.addr.clone(), idx);
            }
        }
        Ok(Self { shards, map, by_primary, skipped, epoch: 0, standalone: false })
    }

    /// The shards. Their order is canonical after parsing; [`patch_slot`](Self::patch_slot)
    /// appends new single-node shards at the end.
    #[must_use]
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The index into [`shards`](Self::shards) of the shard that owns `slot`.
    #[must_use]
    pub fn shard_index(&self, slot: Slot) -> Option<usize> {
        let idx = self.map[slot.index()];
        (idx != NONE).then_some(usize::from(idx))
    }

    /// The shard that owns `slot`.
    #[must_use]
    pub fn shard(&self, slot: Slot) -> Option<&Shard> {
        self.shard_index(slot).and_then(|i| self.shards.get(i))
    }

    /// Where writes for `slot` go: the owning shard's primary, or `None` when no shard owns the
    /// slot or its primary is [`Health::Failed`]. A failed primary is not replaced by a replica
    /// here: the cluster promotes one, and the next refresh (or a `MOVED`) reports it.
    #[must_use]
    pub fn primary(&self, slot: Slot) -> Option<&Node> {
        self.shard(slot).map(|s| &s.primary).filter(|p| p.health != Health::Failed)
    }

    /// The replicas of the shard that owns `slot` (empty when none owns it), of every health.
    #[must_use]
    pub fn replicas(&self, slot: Slot) -> &[Node] {
        self.shard(slot).map_or(&[], |s| &s.replicas)
    }

    /// Every shard's primary, in shard order.
    pub fn primaries(&self) -> impl Iterator<Item = &Node> {
        self.shards.iter().map(|s| &s.primary)
    }

    /// Every node, primaries and replicas, in shard order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.shards.iter().flat_map(Shard::nodes)
    }

    /// Every distinct node address, sorted.
    #[must_use]
    pub fn node_addrs(&self) -> Vec<NodeAddr> {
        let mut v: Vec<NodeAddr> = self.nodes().map(|n| n.addr.clone()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// How many nodes the topology lists (primaries and replicas, duplicates included).
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.shards.iter().map(|s| 1 + s.replicas.len()).sum()
    }

    /// How many of the 16384 slots a shard owns.
    #[must_use]
    pub fn covered_slots(&self) -> usize {
        self.map.iter().filter(|&&i| i != NONE).count()
    }

    /// Whether every slot is owned.
    #[must_use]
    pub fn is_fully_covered(&self) -> bool {
        self.map.iter().all(|&i| i != NONE)
    }

    /// The ranges of slots no shard owns, in order.
    #[must_use]
    pub fn uncovered_ranges(&self) -> Vec<SlotRange> {
        let mut out: Vec<SlotRange> = Vec::new();
        for (n, _) in self.map.iter().enumerate().filter(|&(_, &i)| i == NONE) {
            let Some(slot) = u16::try_from(n).ok().and_then(Slot::new) else { continue };
            match out.last_mut() {
                Some(last) if last.end().get().saturating_add(1) == slot.get() => {
                    *last = SlotRange::new(last.start(), slot).unwrap_or(*last);
                }
                _ => out.push(SlotRange::single(slot)),
            }
        }
        out
    }

    /// Nodes the reply listed but the parser left out, with the reason.
    #[must_use]
    pub fn skipped(&self) -> &[SkippedNode] {
        &self.skipped
    }

    /// The owner's change counter (0 after parsing).
    #[must_use]
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Sets the change counter. The owner bumps it on every applied change (a new topology, a
    /// patch) so that state derived from an older map can tell it is stale.
    pub const fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Applies a `MOVED slot addr` at once: the slot now belongs to the shard whose primary is
    /// `addr`, or to a new single-node shard when no shard has that primary. Only this slot
    /// changes; a full refresh later fixes everything else. `addr` must already be resolved (a
    /// `MOVED` with an empty host means the host of the node that answered).
    ///
    /// A primary marked [`Health::Failed`] that a `MOVED` points at is marked online again: the
    /// redirect is fresher evidence than the last reply. A `MOVED` to a node known only as a
    /// replica (a failover) also gets a new single-node shard: nothing is promoted or demoted
    /// on a guess, and later `MOVED`s to the same node land in that shard.
    ///
    /// Returns whether the slot's owner changed. Costs a hash lookup plus the target shards'
    /// range lists. Fails only when a new shard would pass [`MAX_SHARDS`].
    pub fn patch_slot(&mut self, slot: Slot, addr: NodeAddr) -> Result<bool, TopologyError> {
        let target = match self.by_primary.get(&addr) {
            Some(&i) => i,
            None => {
                let i = u16::try_from(self.shards.len())
                    .ok()
                    .filter(|&i| usize::from(i) < MAX_SHARDS)
                    .ok_or(TopologyError::TooManyShards { limit: MAX_SHARDS })?;
                self.shards.push(Shard {
                    slots: Vec::new(),
                    primary: Node::from_addr(addr.clone()),
                    replicas: Vec::new(),
                });
                self.by_primary.insert(addr, i);
                i
            }
        };
        let cell = &mut self.map[slot.index()];
        let old = *cell;
        if let Some(shard) = self.shards.get_mut(usize::from(target)) {
            if shard.primary.health == Health::Failed {
                shard.primary.health = Health::Online;
            }
        }
        if old == target {
            return Ok(false);
        }
        *cell = target;
        if let Some(shard) = self.shards.get_mut(usize::from(old)) {
            range::remove_slot(&mut shard.slots, slot);
        }
        if let Some(shard) = self.shards.get_mut(usize::from(target)) {
            range::insert_slot(&mut shard.slots, slot);
        }
        Ok(true)
    }

    /// The shards in canonical order (the stored order, unless patches appended or emptied some).
    fn canonical_order(&self) -> Vec<&Shard> {
        let mut v: Vec<&Shard> = self.shards.iter().collect();
        v.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        v
    }

    /// The raw slot → shard index table entry (for `diff`).
    pub(crate) fn raw_index(&self, slot: usize) -> Option<u16> {
        self.map.get(slot).copied().filter(|&i| i != NONE)
    }

    /// Checks the internal invariants (slot map and shard ranges agree, indices in bounds,
    /// ranges sorted and merged). For tests and fuzzing.
    #[cfg(any(test, feature = "_fuzz"))]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut from_ranges = vec![NONE; SLOT_COUNT as usize];
        for (i, shard) in self.shards.iter().enumerate() {
            let mut sorted = shard.slots.clone();
            range::normalize(&mut sorted).map_err(|e| format!("shard {i}: {e}"))?;
            if sorted != shard.slots {
                return Err(format!("shard {i}: ranges not canonical"));
            }
            for slot in shard.slots.iter().flat_map(|r| r.slots()) {
                let cell = from_ranges.get_mut(slot.index()).ok_or("slot out of table")?;
                if *cell != NONE {
                    return Err(format!("slot {slot} in two shards"));
                }
                *cell = u16::try_from(i).map_err(|_| "index overflow")?;
            }
        }
        if from_ranges.as_slice() != self.map.as_slice() {
            return Err("slot map disagrees with shard ranges".into());
        }
        for (addr, &i) in &self.by_primary {
            let shard = self.shards.get(usize::from(i)).ok_or("primary index out of bounds")?;
            if &shard.primary.addr != addr {
                return Err(format!("primary index for {addr} points at {}", shard.primary.addr));
            }
        }
        Ok(())
    }
}
