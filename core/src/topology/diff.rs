//! What changed between two topologies.

use std::collections::HashMap;

use super::Topology;
use super::node_info::{Health, Node, Role};
use super::range::SlotRange;
use crate::{NodeAddr, SLOT_COUNT, Slot};

/// A run of consecutive slots whose owner changed the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMove {
    /// The slots.
    pub range: SlotRange,
    /// The old owner's address (`None`: the slots were unowned).
    pub from: Option<NodeAddr>,
    /// The new owner's address (`None`: the slots are now unowned). Equal to `from` when a
    /// different server (another node id) took over the same address.
    pub to: Option<NodeAddr>,
}

/// A node whose role flipped (a failover).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// The node.
    pub addr: NodeAddr,
    /// Its old role.
    pub from: Role,
    /// Its new role.
    pub to: Role,
}

/// A node whose reported health changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthChange {
    /// The node.
    pub addr: NodeAddr,
    /// Its old health.
    pub from: Health,
    /// Its new health.
    pub to: Health,
}

/// The difference from an old topology to a new one; see [`Topology::diff`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopologyDiff {
    /// Slots whose owner changed, as maximal runs in slot order. A slot's owner is the primary
    /// of the shard holding it, compared by address and node id (an unknown id matches any), so
    /// a shard whose primary merely changed health has not moved, but a failover has.
    pub moved: Vec<SlotMove>,
    /// Node addresses in the new topology only, sorted.
    pub added: Vec<NodeAddr>,
    /// Node addresses in the old topology only, sorted.
    pub removed: Vec<NodeAddr>,
    /// Nodes in both whose role changed, sorted by address.
    pub role_changes: Vec<RoleChange>,
    /// Nodes in both whose health changed, sorted by address.
    pub health_changes: Vec<HealthChange>,
}

impl TopologyDiff {
    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.moved.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.role_changes.is_empty()
            && self.health_changes.is_empty()
    }

    /// How many slots changed owner.
    #[must_use]
    pub fn moved_slot_count(&self) -> usize {
        self.moved.iter().map(|m| m.range.len()).sum()
    }

    /// Every slot that changed owner, in order: exactly the slots a slot-scoped cache must drop.
    pub fn moved_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.moved.iter().flat_map(|m| m.range.slots())
    }

    /// Whether `slot` changed owner (binary search over the runs).
    #[must_use]
    pub fn slot_moved(&self, slot: Slot) -> bool {
        let i = self.moved.partition_point(|m| m.range.end() < slot);
        self.moved.get(i).is_some_and(|m| m.range.contains(slot))
    }
}

impl Topology {
    /// What changed from `self` (old) to `new`.
    ///
    /// Costs one pass over the 16384-entry slot maps (owner comparisons are cached per pair of
    /// shards, so the pass is a table walk) plus a hash join over the node lists.
    #[must_use]
    pub fn diff(&self, new: &Self) -> TopologyDiff {
        TopologyDiff { moved: self.moved_ranges(new), ..node_changes(self, new) }
    }

    fn moved_ranges(&self, new: &Self) -> Vec<SlotMove> {
        let mut out: Vec<SlotMove> = Vec::new();
        let mut run: Option<Run> = None;
        let mut memo: Option<(IndexPair, bool)> = None;
        let flush = |out: &mut Vec<SlotMove>, run: Run| {
            if let Some(range) = SlotRange::new(run.0, run.1) {
                let from = owner(self, run.2).map(|n| n.addr.clone());
                let to = owner(new, run.3).map(|n| n.addr.clone());
                out.push(SlotMove { range, from, to });
            }
        };
        for n in 0..usize::from(SLOT_COUNT) {
            let Some(slot) = u16::try_from(n).ok().and_then(Slot::new) else { continue };
            let pair = (self.raw_index(n), new.raw_index(n));
            let changed = match memo {
                Some((p, c)) if p == pair => c,
                _ => {
                    let c = !same_owner(owner(self, pair.0), owner(new, pair.1));
                    memo = Some((pair, c));
                    c
                }
            };
            run = match (run, changed) {
                (Some(r), true) if (r.2, r.3) == pair => Some((r.0, slot, r.2, r.3)),
                (Some(r), true) => {
                    flush(&mut out, r);
                    Some((slot, slot, pair.0, pair.1))
                }
                (None, true) => Some((slot, slot, pair.0, pair.1)),
                (Some(r), false) => {
                    flush(&mut out, r);
                    None
                }
                (None, false) => None,
            };
        }
        if let Some(r) = run {
            flush(&mut out, r);
        }
        // Runs split only because shard indices differed but owners are the same server: merge.
        out.dedup_by(|b, a| {
            let adjacent = a.range.end().get().saturating_add(1) == b.range.start().get();
            if adjacent && a.from == b.from && a.to == b.to {
                if let Some(r) = SlotRange::new(a.range.start(), b.range.end()) {
                    a.range = r;
                    return true;
                }
            }
            false
        });
        out
    }
}

/// Shard indices of one slot in the old and the new topology.
type IndexPair = (Option<u16>, Option<u16>);

/// A run of changed slots being built: first slot, last slot, old index, new index.
type Run = (Slot, Slot, Option<u16>, Option<u16>);

/// The primary of shard `i`, if any.
fn owner(t: &Topology, i: Option<u16>) -> Option<&Node> {
    i.and_then(|i| t.shards().get(usize::from(i))).map(|s| &s.primary)
}

/// The first node listed at each address.
fn by_addr(t: &Topology) -> HashMap<&NodeAddr, &Node> {
    let mut m: HashMap<&NodeAddr, &Node> = HashMap::new();
    for n in t.nodes() {
        m.entry(&n.addr).or_insert(n);
    }
    m
}

fn same_owner(a: Option<&Node>, b: Option<&Node>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.same_server(b),
        (None, None) => true,
        _ => false,
    }
}

fn node_changes(old: &Topology, new: &Topology) -> TopologyDiff {
    let (a, b) = (by_addr(old), by_addr(new));
    let mut d = TopologyDiff::default();
    for (addr, n) in &a {
        match b.get(addr) {
            None => d.removed.push((*addr).clone()),
            Some(m) => {
                if n.role != m.role {
                    d.role_changes.push(RoleChange { addr: (*addr).clone(), from: n.role, to: m.role });
                }
                if n.health != m.health {
                    d.health_changes.push(HealthChange {
                        addr: (*addr).clone(),
                        from: n.health,
                        to: m.health,
                    });
                }
            }
        }
    }
    d.added = b.keys().filter(|addr| !a.contains_key(*addr)).map(|addr| (*addr).clone()).collect();
    d.added.sort_unstable();
    d.removed.sort_unstable();
    d.role_changes.sort_by(|x, y| x.addr.cmp(&y.addr));
    d.health_changes.sort_by(|x, y| x.addr.cmp(&y.addr));
    d
}
