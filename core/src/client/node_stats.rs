//! Counters per node, for observability: what the client sent to each node and what came
//! back. The core only counts; exporting them (metrics, logs) is the adapter's business.
//!
//! Every node the client ever opened a connection to has an entry with a small, stable
//! [`NodeId`] (an index: an adapter keeps what it derives per node, such as metric handles, in
//! a plain table). Counting costs an indexed increment per command and per reply, no hashing
//! and no allocation; the nodes whose counters moved since the adapter last looked are listed
//! (each once), so looking costs nothing when nothing happened.
//!
//! Entries are never removed: their number is the number of distinct addresses the client
//! has connected to in its life (the cluster's nodes, plus those that replaced them).

use std::collections::HashMap;

use foldhash::fast::FixedState;

use crate::node_addr::NodeAddr;

/// A node's stable number in this client (see [`Client::changed_nodes`](super::Client::changed_nodes)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// A small number, dense from 0 in the order the client first connected to the nodes.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// One node's counters since the client first connected to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Commands written to the node for callers (each attempt counts; handshakes and topology
    /// queries do not).
    pub requests: u64,
    /// Error replies other than `MOVED`, `ASK` and `NOSCRIPT` (`TRYAGAIN`, `CLUSTERDOWN`,
    /// `WRONGTYPE`, a script's error...). `NOSCRIPT` is the script cache's normal miss (the
    /// cache then sends the script itself), not a fault of the node.
    pub error_replies: u64,
    /// `MOVED` replies from the node.
    pub moved: u64,
    /// `ASK` replies from the node.
    pub ask: u64,
    /// Connections to the node that failed to open, or were lost once open.
    pub connection_errors: u64,
    /// Commands written to the node whose request ran out of time before the reply came.
    pub timeouts: u64,
    /// Connections opened to replace one that was lost.
    pub reconnects: u64,
    /// Commands written or queued on the node's connections and not answered yet (handshake
    /// commands included); a value now, not a count.
    pub pending: u64,
}

#[derive(Debug)]
struct Entry {
    addr: NodeAddr,
    stats: NodeStats,
    changed: bool,
    /// Established connections lost and not replaced yet (what makes an open a reconnect).
    lost: u64,
}

/// Every node's counters (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct NodeTable {
    entries: Vec<Entry>,
    /// foldhash with a fixed seed, as the client's node map (see `Client::nodes`).
    ids: HashMap<NodeAddr, NodeId, FixedState>,
    changed: Vec<NodeId>,
}

impl NodeTable {
    /// The id of `addr`, given one now if it has none.
    pub(crate) fn id(&mut self, addr: &NodeAddr) -> NodeId {
        if let Some(id) = self.ids.get(addr) {
            return *id;
        }
        let id = NodeId(u32::try_from(self.entries.len()).unwrap_or(u32::MAX));
        if id.0 == u32::MAX {
            // 4 billion distinct addresses: count the rest on the last entry rather than fail.
            return NodeId(u32::MAX - 1);
        }
        self.entries.push(Entry { addr: addr.clone(), stats: NodeStats::default(), changed: false, lost: 0 });
        self.ids.insert(addr.clone(), id);
        id
    }

    /// Changes `id`'s counters and lists it as changed.
    pub(crate) fn bump(&mut self, id: NodeId, f: impl FnOnce(&mut NodeStats)) {
        if let Some(e) = self.entries.get_mut(id.index()) {
            f(&mut e.stats);
            if !e.changed {
                e.changed = true;
                self.changed.push(id);
            }
        }
    }

    /// Lists `id` as changed (its pending count moved).
    pub(crate) fn touch(&mut self, id: NodeId) {
        self.bump(id, |_| {});
    }

    /// An established connection to `id` was lost.
    pub(crate) fn lost(&mut self, id: NodeId) {
        if let Some(e) = self.entries.get_mut(id.index()) {
            e.lost += 1;
        }
        self.bump(id, |s| s.connection_errors += 1);
    }

    /// A connection to `id` opened: a reconnect when it replaces a lost one.
    pub(crate) fn opened(&mut self, id: NodeId) {
        let Some(e) = self.entries.get_mut(id.index()) else { return };
        if e.lost > 0 {
            e.lost -= 1;
            self.bump(id, |s| s.reconnects += 1);
        }
    }

    /// The address of `id`.
    pub(crate) fn addr(&self, id: NodeId) -> Option<&NodeAddr> {
        self.entries.get(id.index()).map(|e| &e.addr)
    }

    /// Every node, with its counters (`pending` as `pending(addr)` says).
    pub(crate) fn all(&self, pending: impl Fn(&NodeAddr) -> u64) -> Vec<(NodeId, NodeAddr, NodeStats)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut s = e.stats.clone();
                s.pending = pending(&e.addr);
                (NodeId(u32::try_from(i).unwrap_or(u32::MAX)), e.addr.clone(), s)
            })
            .collect()
    }

    /// Calls `f` for each node whose counters changed since the last call, with `pending`
    /// filled in by `pending(addr)`, and forgets that they changed.
    pub(crate) fn drain_changed(
        &mut self,
        pending: impl Fn(&NodeAddr) -> u64,
        mut f: impl FnMut(NodeId, &NodeAddr, &NodeStats),
    ) {
        for id in self.changed.drain(..) {
            let Some(e) = self.entries.get_mut(id.index()) else { continue };
            e.changed = false;
            e.stats.pending = pending(&e.addr);
            f(id, &e.addr, &e.stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_changes_listed_once() {
        let mut t = NodeTable::default();
        let (a, b) = (NodeAddr::new("a", 1), NodeAddr::new("b", 2));
        let ia = t.id(&a);
        assert_eq!((ia.index(), t.id(&b).index(), t.id(&a)), (0, 1, ia));
        t.bump(ia, |s| s.requests += 1);
        t.bump(ia, |s| s.requests += 1);
        t.lost(ia);
        t.opened(ia);
        t.opened(ia);
        let mut seen = Vec::new();
        t.drain_changed(|_| 7, |id, addr, s| seen.push((id, addr.clone(), s.clone())));
        assert_eq!(seen.len(), 1);
        let s = &seen[0].2;
        assert_eq!((s.requests, s.connection_errors, s.reconnects, s.pending), (2, 1, 1, 7));
        let mut again = 0;
        t.drain_changed(|_| 0, |_, _, _| again += 1);
        assert_eq!(again, 0, "nothing changed since");
        assert_eq!(t.addr(ia), Some(&a));
        assert_eq!(t.all(|_| 0).len(), 2);
    }
}
