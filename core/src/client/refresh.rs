//! Driving topology refreshes: when the policy says so, ask one node for `CLUSTER SHARDS`
//! (falling back to `CLUSTER SLOTS`), apply the answer and re-route what waited for it.
//!
//! A standalone node ([`Mode`]): in [`Mode::Auto`], a node that answers `CLUSTER SHARDS` with
//! `ERR This instance has cluster support disabled` is asked `INFO` on the same connection, and
//! its answer is the topology (one shard owning every slot, see
//! [`Topology::from_info_reply`]); in [`Mode::Standalone`], `INFO` is the only query. A node of
//! the other kind than the configured mode is a [`RequestError::ModeMismatch`]: before the
//! first topology, once every seed has refused so, the waiting requests fail with it at once.

use std::time::Instant;

use crate::node_addr::NodeAddr;
use crate::resp::Value;
use crate::topology::{RefreshReason, Topology, TopologyError};

use super::arena::Id;
use super::conn::{ConnState, Expect, TopologyQuery};
use super::error::RequestError;
use super::timers::Timer;
use super::{Client, Event, Mode, Output, SubState};

impl Client {
    /// Starts a refresh if the policy allows one now.
    pub(crate) fn maybe_start_refresh(&mut self, now: Instant) {
        if self.closed || self.refresh_conn.is_some() || !self.refresh.poll_start(now) {
            return;
        }
        self.stats.refreshes += 1;
        let Some(addr) = self.refresh_target() else {
            self.refresh_failed(now, "no node to ask");
            return;
        };
        if self.topology.is_none() {
            // The seeds in turn; with a topology the cursor moves on success (`apply_topology`).
            self.refresh_cursor = self.refresh_cursor.wrapping_add(1);
        }
        let cid = match self.conn_for(now, &addr) {
            Ok(cid) => cid,
            Err(e) => {
                self.refresh_failed(now, &e.to_string());
                return;
            }
        };
        let query = match self.cfg.mode {
            Mode::Standalone => TopologyQuery::Info,
            _ => TopologyQuery::Shards,
        };
        let Some(conn) = self.conns.get_mut(cid) else { return };
        if conn.state == ConnState::Connecting {
            conn.queued_topology = Some(query);
        } else {
            conn.write(query.command(), Expect::Topology(query));
            self.mark_dirty(cid);
        }
        self.refresh_conn = Some((cid, now));
        let deadline = now + self.cfg.connect_timeout + self.cfg.request_timeout;
        self.timers.push(deadline, Timer::Refresh(cid, now));
    }

    /// The node to ask for the next topology.
    ///
    /// Without a topology: the seeds in turn, from a random one.
    ///
    /// With one: after a successful refresh, a known primary, a different one each time (so
    /// refreshes spread over the primaries), from a random one: clients with the same seeds
    /// and history would otherwise ask the same primary in step, and a fleet's refreshes
    /// would all land on one node (docs/performance.md). After `k` consecutive failed
    /// refreshes, the `k`-th next node of [`refresh_candidates`](Self::refresh_candidates),
    /// wrapping round: a run of failures asks every known primary (from the one that failed),
    /// then every known replica, then every seed the topology does not list, before asking any
    /// node twice. So when every primary the client knows is dead (a one-shard cluster, or all
    /// of them at once), the next refresh asks a replica, which knows of its own promotion; and
    /// if the whole topology is stale, the seeds. Only the choice of node changes with
    /// failures: when a refresh starts stays the
    /// [`RefreshPolicy`](crate::topology::RefreshPolicy)'s (minimum interval, jitter, failure
    /// backoff).
    fn refresh_target(&self) -> Option<NodeAddr> {
        let cursor = self.refresh_cursor;
        if self.topology.is_none() {
            return self.cfg.seeds.get(cursor % self.cfg.seeds.len().max(1)).cloned();
        }
        let (candidates, primaries) = self.refresh_candidates();
        if candidates.is_empty() {
            return None;
        }
        let failures = usize::try_from(self.refresh.consecutive_failures()).unwrap_or(usize::MAX);
        let k = failures % candidates.len();
        let i = if k < primaries { cursor.wrapping_add(k) % primaries } else { k };
        candidates.get(i).cloned()
    }

    /// Nodes to ask once a topology is known, in order, and how many of them (the first ones)
    /// are primaries: the known primaries, then the known replicas (each group with the nodes
    /// that have an open connection first, so a refresh costs no connect), then the seeds the
    /// topology does not list. Every address once.
    fn refresh_candidates(&self) -> (Vec<NodeAddr>, usize) {
        let Some(t) = &self.topology else { return (self.cfg.seeds.clone(), 0) };
        let mut primaries: Vec<NodeAddr> = t.primaries().map(|n| n.addr.clone()).collect();
        primaries.sort_by_key(|a| !self.nodes.contains_key(a));
        let mut replicas: Vec<NodeAddr> = t
            .shards()
            .iter()
            .flat_map(|s| s.replicas.iter().map(|n| n.addr.clone()))
            .filter(|a| !primaries.contains(a))
            .collect();
        replicas.sort_by_key(|a| !self.nodes.contains_key(a));
        let n = primaries.len();
        let mut all = primaries;
        all.append(&mut replicas);
        for seed in &self.cfg.seeds {
            if !all.contains(seed) {
                all.push(seed.clone());
            }
        }
        (all, n)
    }

    pub(crate) fn on_topology_reply(&mut self, now: Instant, cid: Id, q: TopologyQuery, value: Value) {
        if self.refresh_conn.map(|(c, _)| c) != Some(cid) {
            return; // a refresh that already timed out
        }
        let Some(addr) = self.conns.get(cid).map(|c| c.addr.clone()) else { return };
        let parsed = match q {
            TopologyQuery::Shards => Topology::from_shards_reply(&value, &addr, self.cfg.tls),
            TopologyQuery::Slots => Topology::from_slots_reply(&value, &addr),
            TopologyQuery::Info => Topology::from_info_reply(&value, &addr),
        };
        let disabled = matches!(&value, Value::Error(e) if crate::topology::is_cluster_disabled(e));
        match parsed {
            Ok(t) => {
                // A standalone replica answered: it named its primary and itself only. Ask the
                // primary for its other replicas next (once per new answer, so a primary that
                // cannot be reached is not asked in a loop).
                let ask_primary = t.is_standalone()
                    && t.primaries().all(|p| p.addr != addr)
                    && self.topology.as_ref() != Some(&t);
                self.apply_topology(now, t);
                if ask_primary {
                    self.request_refresh_only(now, RefreshReason::Manual);
                }
            }
            // A standalone node.
            Err(_) if disabled && q != TopologyQuery::Info => match self.cfg.mode {
                Mode::Cluster => self.mode_mismatch(now, addr, Mode::Standalone),
                _ => self.ask_again(cid, TopologyQuery::Info),
            },
            Err(TopologyError::ClusterEnabled) => self.mode_mismatch(now, addr, Mode::Cluster),
            // An ACL user denied `INFO` on a standalone node: the node alone, without replicas.
            Err(TopologyError::Server(e)) if q == TopologyQuery::Info && e.starts_with("NOPERM") => {
                tracing::debug!(node = %addr, error = %e, "slotcache: INFO refused, the node alone is the topology");
                match Topology::standalone(crate::topology::Node::from_addr(addr.clone()), Vec::new()) {
                    Ok(t) => self.apply_topology(now, t),
                    Err(e) => self.refresh_failed(now, &format!("{addr}: {e}")),
                }
            }
            // Servers before 7.0 have no CLUSTER SHARDS.
            Err(_) if q == TopologyQuery::Shards => self.ask_again(cid, TopologyQuery::Slots),
            Err(TopologyError::Server(e)) => self.refresh_failed(now, &format!("{addr}: {e}")),
            Err(e) => self.refresh_failed(now, &format!("{addr}: {e}")),
        }
    }

    /// Sends the next topology query of this refresh on the same connection.
    fn ask_again(&mut self, cid: Id, q: TopologyQuery) {
        let Some(conn) = self.conns.get_mut(cid) else { return };
        conn.write(q.command(), Expect::Topology(q));
        self.mark_dirty(cid);
    }

    /// Node `addr` is a `found` node while the configuration says otherwise: this refresh
    /// fails with [`RequestError::ModeMismatch`], and before the first topology the seed counts
    /// as refusing the client (see [`seed_refused`](Self::seed_refused)).
    fn mode_mismatch(&mut self, now: Instant, addr: NodeAddr, found: Mode) {
        let error = RequestError::ModeMismatch { addr: addr.clone(), configured: self.cfg.mode, found };
        self.refresh_failed(now, &error.to_string());
        self.seed_refused(addr, error);
    }

    pub(crate) fn refresh_failed(&mut self, now: Instant, reason: &str) {
        tracing::debug!(reason, "slotcache: topology refresh failed");
        self.refresh_conn = None;
        let n = self.node_count();
        self.refresh.finished(now, false, n, &mut self.rng);
        self.stats.refresh_failures += 1;
        self.last_refresh_error = Some(reason.to_owned());
        if self.topology.is_none() || !self.waiting_topology.is_empty() {
            let reason = self.refresh_reason_without_topology();
            self.request_refresh_only(now, reason);
        }
    }

    /// Before the first topology, seed `addr` refused this client for a reason retrying does
    /// not fix: the credentials ([`RequestError::Auth`]) or the TLS handshake
    /// ([`RequestError::Unreachable`] with a [`TlsFailure`](super::TlsFailure)). Once every seed
    /// has, no topology will come with these settings: the requests waiting for one fail now
    /// with the typed error instead of at their deadline (the refresh goes on, backing off, in
    /// case the servers change).
    pub(crate) fn seed_refused(&mut self, addr: NodeAddr, error: RequestError) {
        if self.topology.is_some() {
            return;
        }
        self.seed_refusals.retain(|(a, _)| *a != addr);
        self.seed_refusals.push((addr, error));
        if let Some(e) = self.refused_by_every_seed() {
            let waiting: Vec<Id> = self.waiting_topology.drain(..).collect();
            for sid in waiting {
                if self.subs.get(sid).is_some_and(|s| s.state == SubState::WaitingTopology) {
                    self.complete_sub(sid, Err(e.clone()));
                }
            }
        }
    }

    /// The typed refusal, when there is no topology yet and every seed refused the client.
    pub(crate) fn refused_by_every_seed(&self) -> Option<RequestError> {
        if self.topology.is_some()
            || !self.cfg.seeds.iter().all(|s| self.seed_refusals.iter().any(|(a, _)| a == s))
        {
            return None;
        }
        self.last_seed_refusal()
    }

    /// The last seed's refusal before the first topology, as a typed error.
    pub(crate) fn last_seed_refusal(&self) -> Option<RequestError> {
        self.seed_refusals.last().map(|(_, e)| e.clone())
    }

    /// The reason to ask for a topology with while none routes a request: `Startup` (at once)
    /// until each seed has been tried once, so a dead seed does not delay the others; `Manual`
    /// (after the policy's backoff) once a whole round of seeds has failed, so seeds that refuse
    /// connections or credentials are not hammered in a loop until the requests' deadlines.
    pub(crate) fn refresh_reason_without_topology(&self) -> RefreshReason {
        let failures = usize::try_from(self.refresh.consecutive_failures()).unwrap_or(usize::MAX);
        if self.topology.is_none() && failures < self.cfg.seeds.len() {
            RefreshReason::Startup
        } else {
            RefreshReason::Manual
        }
    }

    fn apply_topology(&mut self, now: Instant, new: Topology) {
        self.refresh_conn = None;
        self.topology_fetched = Some(now);
        self.stats.refresh_successes += 1;
        self.refresh_cursor = self.refresh_cursor.wrapping_add(1);
        let n = new.node_count();
        self.refresh.finished(now, true, n, &mut self.rng);
        self.last_refresh_error = None;
        self.seed_refusals.clear();
        let mut new = new;
        // The slots a MOVED patched since the last event changed owner too, even when the
        // refreshed topology matches the patched map (a slot migration met by a request): an
        // observer that only sees refreshed topologies (the async layer's snapshot) must hear
        // of them.
        let patched = std::mem::take(&mut self.patched);
        let changed = match &self.topology {
            Some(old) => {
                let diff = old.diff(&new);
                (!diff.is_empty() || !patched.is_empty()).then(|| {
                    crate::topology::union_of_ranges(
                        diff.moved.iter().map(|m| m.range).chain(patched).collect(),
                    )
                })
            }
            None => Some(new.shards().iter().flat_map(|s| s.slots.iter().copied()).collect()),
        };
        if let Some(changed) = changed {
            tracing::debug!(epoch = self.epoch + 1, ranges = changed.len(), "slotcache: topology changed");
            self.epoch += 1;
            self.stats.topology_changes += 1;
            self.outputs.push_back(Output::Event(Event::TopologyChanged { epoch: self.epoch, changed }));
        }
        new.set_epoch(self.epoch);
        self.topology = Some(new);
        self.sync_conn_modes();
        self.close_idle_strangers();
        let waiting: Vec<Id> = self.waiting_topology.drain(..).collect();
        for sid in waiting {
            if self.subs.get(sid).is_some_and(|s| s.state == SubState::WaitingTopology) {
                self.dispatch(now, sid);
            }
        }
    }

    /// Puts every open connection in the mode its node's role in the topology calls for:
    /// `READONLY` to replicas when reads may go there, `READWRITE` otherwise (see
    /// [`Conn::write_readonly_if_needed`](super::conn::Conn::write_readonly_if_needed)). Written
    /// before the requests that waited for this topology are routed, so they follow it in order.
    fn sync_conn_modes(&mut self) {
        if self.cfg.read_from == super::ReadFrom::Primary {
            return;
        }
        for cid in self.conns.ids() {
            let Some(conn) = self.conns.get_mut(cid) else { continue };
            let replica = self.topology.as_ref().is_some_and(|t| t.lists_replica(&conn.addr));
            if conn.sync_mode(&self.cfg, replica) {
                self.mark_dirty(cid);
            }
        }
    }

    /// Closes idle connections to nodes the topology no longer lists (busy ones drain first).
    fn close_idle_strangers(&mut self) {
        let Some(t) = &self.topology else { return };
        let known: std::collections::HashSet<&NodeAddr> = t.nodes().map(|n| &n.addr).collect();
        let mut strangers: Vec<NodeAddr> = self
            .nodes
            .keys()
            .filter(|a| !known.contains(a) && !self.cfg.seeds.contains(a))
            .cloned()
            .collect();
        // In address order, not the node map's hash order: the `Close` outputs come out in it.
        strangers.sort_unstable();
        for addr in strangers {
            let Some(node) = self.nodes.get(&addr) else { continue };
            let idle: Vec<Id> = node
                .conns
                .iter()
                .copied()
                .chain(node.blocking)
                .filter(|c| self.conns.get(*c).is_some_and(|c| c.load() == 0 && c.queued_topology.is_none()))
                .filter(|c| self.refresh_conn.map(|(r, _)| r) != Some(*c))
                .collect();
            for cid in idle {
                self.conns.remove(cid);
                if self.nodes.get_mut(&addr).is_some_and(|n| n.forget(cid)) {
                    self.nodes.remove(&addr);
                }
                self.outputs.push_back(Output::Close { conn: super::ConnId(cid.to_u64()) });
            }
        }
    }
}
