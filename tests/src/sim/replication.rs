//! Asynchronous replication with lag, `WAIT` acknowledgements, failovers that lose the
//! unreplicated tail, and resynchronisation (partial or full, as PSYNC2 decides).
//!
//! A primary turns each command's changes into [`Effect`](super::store::Effect)s (the key's new state, or its
//! deletion) appended to its backlog; `master_repl_offset` grows by each effect's size. Each
//! replica applies the backlog after its own lag (an event in the simulation's queue), unless it
//! is frozen or down. A replica's applied offset is what `WAIT` counts and what a promotion keeps.

use std::time::Duration;

use slotcache_core::NodeAddr;

use super::cluster::{ClusterEv, SimCluster};

impl SimCluster {
    /// Appends the changes `primary`'s last command made to its stream and schedules its
    /// replicas to apply them after their lag.
    pub(crate) fn propagate(&mut self, primary: &NodeAddr) {
        let Some(node) = self.nodes.get_mut(primary) else { return };
        let effects = node.data.take_effects();
        if effects.is_empty() || node.replica_of.is_some() {
            return;
        }
        for e in effects {
            node.repl.push(e);
        }
        let upto = node.repl.offset;
        for r in self.replicas_of(primary) {
            let (lag, jitter) =
                self.nodes.get(&r).map_or_else(Default::default, |n| (n.repl.lag, n.repl.lag_jitter));
            let delay = lag + self.rng.duration_up_to(jitter);
            self.outbox.push((delay, ClusterEv::Apply { replica: r, primary: primary.clone(), upto }));
        }
    }

    /// Handles a scheduled replication event.
    pub(crate) fn handle(&mut self, ev: &ClusterEv) {
        match ev {
            ClusterEv::Apply { replica, primary, upto } => self.apply(replica, primary, *upto, false),
        }
    }

    /// `replica` applies `primary`'s stream up to `upto` (all of it when `force`, even frozen).
    fn apply(&mut self, replica: &NodeAddr, primary: &NodeAddr, upto: u64, force: bool) {
        let Some(r) = self.nodes.get(replica) else { return };
        if r.replica_of.as_ref() != Some(primary) || !r.up || (r.repl.frozen && !force) {
            return;
        }
        let from = r.repl.offset;
        let Some(p) = self.nodes.get(primary) else { return };
        let Some(batch) = p.repl.since(from, upto) else {
            self.full_sync(replica);
            return;
        };
        let Some(r) = self.nodes.get_mut(replica) else { return };
        for e in batch {
            r.data.apply(&e);
            r.repl.push(e);
        }
    }

    /// A full resynchronisation: `replica` becomes an exact copy of its primary now.
    pub(crate) fn full_sync(&mut self, replica: &NodeAddr) {
        let Some(p) = self.nodes.get(replica).and_then(|n| n.replica_of.clone()) else { return };
        let Some(src) = self.nodes.get(&p) else { return };
        let (data, offset, id) = (src.data.clone(), src.repl.offset, src.repl.id);
        if let Some(r) = self.nodes.get_mut(replica) {
            r.data.replace_with(&data);
            r.repl.offset = offset;
            r.repl.restart_history(id);
        }
    }

    /// (Re)attaches a replica to its primary: it resumes from the backlog when its history
    /// allows (catching up after its lag), otherwise it gets a full copy at once.
    pub(crate) fn resync(&mut self, replica: &NodeAddr) {
        let Some(r) = self.nodes.get(replica) else { return };
        let Some(p) = r.replica_of.clone() else { return };
        let (id, offset, lag) = (r.repl.id, r.repl.offset, r.repl.lag);
        let Some(pn) = self.nodes.get(&p) else { return };
        if pn.repl.can_resume(id, offset) {
            let upto = pn.repl.offset;
            let pid = pn.repl.id;
            if let Some(r) = self.nodes.get_mut(replica) {
                r.repl.id = pid;
            }
            self.outbox.push((lag, ClusterEv::Apply { replica: replica.clone(), primary: p, upto }));
        } else {
            self.full_sync(replica);
        }
    }

    /// The replicas of `primary`, in address order.
    #[must_use]
    pub fn replicas_of(&self, primary: &NodeAddr) -> Vec<NodeAddr> {
        self.nodes
            .values()
            .filter(|n| n.replica_of.as_ref() == Some(primary))
            .map(|n| n.addr.clone())
            .collect()
    }

    /// How many replicas of `primary` (up, attached) have applied its stream up to `offset`:
    /// what `WAIT` counts.
    #[must_use]
    pub fn acked(&self, primary: &NodeAddr, offset: u64) -> usize {
        self.nodes
            .values()
            .filter(|n| n.replica_of.as_ref() == Some(primary) && n.up && n.repl.offset >= offset)
            .count()
    }

    /// `master_repl_offset` of a node (a replica: what it has applied).
    #[must_use]
    pub fn repl_offset(&self, node: &NodeAddr) -> u64 {
        self.nodes.get(node).map_or(0, |n| n.repl.offset)
    }

    /// Sets a replica's lag (and random extra lag per write, drawn from the seed).
    pub fn set_replication_lag(&mut self, replica: &NodeAddr, lag: Duration, jitter: Duration) {
        if let Some(n) = self.nodes.get_mut(replica) {
            n.repl.lag = lag;
            n.repl.lag_jitter = jitter;
        }
    }

    /// Gives every replica a random lag in `0..=max` (from the cluster's seeded generator) and
    /// the same bound as per-write jitter.
    pub fn randomize_replication_lag(&mut self, max: Duration) {
        let replicas: Vec<NodeAddr> =
            self.nodes.values().filter(|n| n.replica_of.is_some()).map(|n| n.addr.clone()).collect();
        for r in replicas {
            let lag = self.rng.duration_up_to(max);
            self.set_replication_lag(&r, lag, max);
        }
    }

    /// Freezes a replica (it applies nothing) or thaws it (it catches up after its lag).
    pub fn freeze_replica(&mut self, replica: &NodeAddr, frozen: bool) {
        let Some(n) = self.nodes.get_mut(replica) else { return };
        n.repl.frozen = frozen;
        if !frozen && n.replica_of.is_some() {
            self.resync(replica);
        }
    }

    /// A forced failover (`CLUSTER FAILOVER TAKEOVER`, or the election after a primary died):
    /// `replica` is promoted with exactly the data it has applied, so the old primary's
    /// unreplicated tail is lost. The old primary becomes its replica (resynchronising now if it
    /// is up, when restarted otherwise) and so do the other replicas. Script caches are not
    /// touched: the promoted node has only the scripts that were loaded on it directly.
    pub fn failover(&mut self, replica: &NodeAddr) {
        let Some(old) = self.nodes.get(replica).and_then(|n| n.replica_of.clone()) else { return };
        for o in &mut self.owner {
            if o.as_ref() == Some(&old) {
                *o = Some(replica.clone());
            }
        }
        for (src, dst) in self.migrating.values_mut() {
            for a in [src, dst] {
                if *a == old {
                    *a = replica.clone();
                }
            }
        }
        self.next_repl_id += 1;
        let id = self.next_repl_id;
        if let Some(n) = self.nodes.get_mut(replica) {
            n.replica_of = None;
            n.repl.prev = Some((n.repl.id, n.repl.offset));
            n.repl.id = id;
            n.repl.frozen = false;
        }
        let mut followers = self.replicas_of(&old);
        followers.retain(|a| a != replica);
        followers.push(old);
        for f in followers {
            let up = self.nodes.get_mut(&f).map(|n| {
                n.replica_of = Some(replica.clone());
                n.up
            });
            if up == Some(true) {
                self.resync(&f);
            }
        }
    }

    /// A manual failover (`CLUSTER FAILOVER`): the replica first catches up with its primary
    /// (frozen or not), so nothing is lost; then as [`SimCluster::failover`].
    pub fn manual_failover(&mut self, replica: &NodeAddr) {
        let Some(p) = self.nodes.get(replica).and_then(|n| n.replica_of.clone()) else { return };
        let upto = self.repl_offset(&p);
        self.apply(replica, &p, upto, true);
        self.failover(replica);
    }

    /// The replica of `primary` that has applied the most (ties: lowest address), which an
    /// election promotes; only replicas that are up.
    #[must_use]
    pub fn best_replica(&self, primary: &NodeAddr) -> Option<NodeAddr> {
        let mut best: Option<(&NodeAddr, u64)> = None;
        for n in self.nodes.values().filter(|n| n.replica_of.as_ref() == Some(primary) && n.up) {
            if best.is_none_or(|(_, o)| n.repl.offset > o) {
                best = Some((&n.addr, n.repl.offset));
            }
        }
        best.map(|(a, _)| a.clone())
    }

    /// A node came back from a restart: a replica resynchronises; a primary that lost its data
    /// starts a new history, so its replicas resynchronise to its (empty) data, as Valkey's do
    /// when persistence is off and no failover happened.
    pub(crate) fn after_restart(&mut self, node: &NodeAddr, kept_data: bool) {
        let Some(n) = self.nodes.get_mut(node) else { return };
        if !kept_data {
            n.data = super::store::Store::new();
            if n.replica_of.is_none() {
                self.next_repl_id += 1;
                let id = self.next_repl_id;
                n.repl.restart_history(id);
            } else {
                n.repl.restart_history(0);
            }
        }
        if n.replica_of.is_some() {
            self.resync(node);
        } else if !kept_data {
            for r in self.replicas_of(node) {
                if self.nodes.get(&r).is_some_and(|n| n.up) {
                    self.resync(&r);
                }
            }
        }
    }
}
