//! Routing sub-requests to nodes and connections, and writing them.

use std::time::Instant;

use crate::node_addr::NodeAddr;
use crate::slot::Slot;
use crate::topology::RefreshReason;

use super::arena::Id;
use super::config::ReadFrom;
use super::conn::{Conn, ConnState, Expect};
use super::error::RequestError;
use super::plan::Shape;
use super::timers::Timer;
use super::{Client, ConnId, Output, Route, Sub, SubState};

impl Client {
    /// Sends a sub-request where it belongs now: to a connection, or to wait for a topology.
    pub(crate) fn dispatch(&mut self, now: Instant, sid: Id) {
        let Some(sub) = self.subs.get_mut(sid) else { return };
        sub.state = SubState::Idle;
        if let Some(cid) = sub.on_conn {
            self.send_on(cid, sid);
            return;
        }
        let target = match (&sub.ask, &sub.route) {
            (Some(addr), _) => Some(addr.clone()),
            (None, Route::Node(addr)) => Some(addr.clone()),
            (None, Route::Slot(slot)) => {
                let (slot, read_only) = (*slot, sub.read_only);
                self.pick_node(slot, read_only)
            }
            (None, Route::Any) => self.pick_any(),
            (None, Route::Fanout { replicas }) => {
                let replicas = *replicas;
                if self.topology.is_some() {
                    self.expand_fanout(now, sid, replicas);
                    return;
                }
                None
            }
        };
        let Some(addr) = target else {
            self.wait_for_topology(now, sid);
            return;
        };
        // Only a request of several commands pins its connection per node (one command alone
        // has nothing to stay in order with).
        let parent = self
            .subs
            .get(sid)
            .map(|s| s.parent)
            .filter(|p| self.parents.get(*p).is_some_and(|p| p.results.len() > 1));
        let blocking = self.subs.get(sid).is_some_and(|s| s.cmd.is_blocking());
        let on_lane = |c: Id| self.nodes.get(&addr).is_some_and(|n| n.blocking == Some(c)) == blocking;
        let pinned = parent.and_then(|p| self.parents.get(p)).and_then(|p| {
            p.pinned
                .iter()
                .find(|(a, c)| *a == addr && self.conns.get(*c).is_some() && on_lane(*c))
                .map(|(_, c)| *c)
        });
        let cid = match pinned {
            Some(cid) => cid,
            None => {
                match if blocking { self.blocking_conn_for(now, &addr) } else { self.conn_for(now, &addr) } {
                    Ok(cid) => {
                        if let Some(p) = parent.and_then(|p| self.parents.get_mut(p)) {
                            let lane_of =
                                |c: &Id| self.nodes.get(&addr).is_some_and(|n| n.blocking == Some(*c));
                            p.pinned.retain(|(a, c)| *a != addr || lane_of(c) != blocking);
                            p.pinned.push((addr.clone(), cid));
                        }
                        cid
                    }
                    Err(e @ RequestError::Unreachable { .. }) => {
                        // The node refused a connection moments ago: back off (and let a refresh
                        // find where the slot went) instead of dialling again at once; unless it
                        // refused for a reason retrying does not fix (a TLS handshake that did not
                        // verify), then fail now.
                        let permanent =
                            matches!(&e, RequestError::Unreachable { error, .. } if error.is_permanent());
                        let lost = if permanent {
                            crate::retry::Failure::Refused
                        } else {
                            crate::retry::Failure::ConnectionLost { written: false }
                        };
                        self.retry_or_fail(now, sid, lost, e, RefreshReason::ConnectionLost);
                        return;
                    }
                    Err(e) => {
                        self.complete_sub(sid, Err(e));
                        return;
                    }
                }
            }
        };
        let Some(conn) = self.conns.get_mut(cid) else { return };
        if conn.state == ConnState::Ready {
            self.write_sub(cid, sid);
        } else {
            conn.queued.push_back(sid);
            let node = conn.node;
            self.node_stats.touch(node);
            if let Some(sub) = self.subs.get_mut(sid) {
                sub.state = SubState::Queued(cid);
            }
        }
    }

    /// Sends a sub-request on the one connection it may use, or fails it when that connection
    /// is gone or no longer ready (a reconnect is another connection).
    fn send_on(&mut self, cid: Id, sid: Id) {
        match self.conns.get(cid) {
            Some(conn) if conn.state == ConnState::Ready => self.write_sub(cid, sid),
            conn => {
                let addr = conn.map_or_else(|| NodeAddr::new("", 0), |c| c.addr.clone());
                let error = super::error::ConnError::new(
                    super::error::ConnErrorKind::Closed,
                    "the connection this command must follow on is gone",
                );
                self.complete_sub(sid, Err(RequestError::ConnectionLost { addr, error }));
            }
        }
    }

    /// Releases the commands that wait for command `index` of request `pid` (see
    /// [`Cmd::after`](super::Cmd::after)): on `answered_on` when it answered, failed otherwise.
    pub(crate) fn release_followers(&mut self, pid: Id, index: usize, answered_on: Option<Id>) {
        let Some(parent) = self.parents.get(pid) else { return };
        let followers: Vec<Id> = parent
            .subs
            .iter()
            .copied()
            .filter(|s| {
                self.subs.get(*s).is_some_and(|s| s.state == SubState::Held && s.cmd.follows() == Some(index))
            })
            .collect();
        for sid in followers {
            match answered_on {
                Some(cid) => {
                    if let Some(sub) = self.subs.get_mut(sid) {
                        sub.on_conn = Some(cid);
                        sub.state = SubState::Idle;
                    }
                    self.send_on(cid, sid);
                }
                None => self.complete_sub(sid, Err(RequestError::Skipped { index })),
            }
        }
    }

    /// Writes a sub-request on a ready connection (with `ASKING` first after an `ASK`).
    pub(crate) fn write_sub(&mut self, cid: Id, sid: Id) {
        let (Some(conn), Some(sub)) = (self.conns.get_mut(cid), self.subs.get_mut(sid)) else { return };
        if sub.ask.take().is_some() {
            conn.write(&["ASKING"], Expect::Asking);
        }
        conn.write(sub.cmd.args(), Expect::Sub(sid));
        sub.attempts += 1;
        tracing::trace!(
            request = sub.parent.to_u64(),
            command = %String::from_utf8_lossy(sub.cmd.args().first().map_or(&b""[..], |a| a.as_ref())),
            slot = ?match sub.route { Route::Slot(s) => Some(s.get()), _ => None },
            node = %conn.addr,
            attempt = sub.attempts,
            "slotcache: sent"
        );
        if sub.attempts > 1 {
            self.stats.retries += 1;
        }
        sub.state = SubState::InFlight(cid);
        self.node_stats.bump(conn.node, |s| s.requests += 1);
        self.mark_dirty(cid);
    }

    /// Lists a connection whose write buffer has bytes for the next `poll_output`.
    pub(crate) fn mark_dirty(&mut self, cid: Id) {
        if let Some(conn) = self.conns.get_mut(cid) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(cid);
            }
        }
    }

    /// The node for `slot`: the primary, or a replica for reads as `ReadFrom` says.
    fn pick_node(&mut self, slot: Slot, read_only: bool) -> Option<NodeAddr> {
        let topology = self.topology.as_ref()?;
        let primary = topology.primary(slot)?;
        if !read_only {
            return Some(primary.addr.clone());
        }
        let online = |n: &&crate::topology::Node| n.is_online();
        let candidates: Vec<&crate::topology::Node> = match &self.cfg.read_from {
            ReadFrom::Primary => return Some(primary.addr.clone()),
            ReadFrom::PreferReplica => topology.replicas(slot).iter().filter(online).collect(),
            ReadFrom::AzAffinity(az) => topology
                .replicas(slot)
                .iter()
                .filter(online)
                .filter(|n| n.availability_zone.as_deref() == Some(&**az))
                .collect(),
        };
        if candidates.is_empty() {
            return Some(primary.addr.clone());
        }
        let i = self.rng.below(candidates.len() as u64) as usize;
        candidates.get(i).map(|n| n.addr.clone())
    }

    /// Any primary, for keyless commands; a seed before the first topology is known.
    fn pick_any(&mut self) -> Option<NodeAddr> {
        let topology = self.topology.as_ref()?;
        let primaries: Vec<&NodeAddr> = topology.primaries().map(|n| &n.addr).collect();
        let i = self.rng.below(primaries.len() as u64) as usize;
        primaries.get(i).map(|a| (*a).clone())
    }

    /// Turns a fan-out placeholder into one sub-request per primary.
    fn expand_fanout(&mut self, now: Instant, sid: Id, replicas: bool) {
        let Some(sub) = self.subs.remove(sid) else { return };
        let addrs: Vec<NodeAddr> = self
            .topology
            .as_ref()
            .map(|t| {
                if replicas {
                    t.nodes().filter(|n| n.is_online()).map(|n| n.addr.clone()).collect()
                } else {
                    t.primaries().map(|n| n.addr.clone()).collect()
                }
            })
            .unwrap_or_default();
        let Some(parent) = self.parents.get_mut(sub.parent) else { return };
        parent.subs.retain(|s| *s != sid);
        if addrs.is_empty() {
            parent.results[sub.index] = Some(Err(RequestError::NoRoute {
                slot: Slot::new(0).expect("slot 0 exists"),
                detail: "the topology has no primary".into(),
            }));
            parent.pending -= 1;
            if parent.pending == 0 {
                self.finish_parent(sub.parent);
            }
            return;
        }
        match &mut parent.shape {
            Shape::PerNode(a) | Shape::Fanout(_, a) => a.clone_from(&addrs),
            _ => {}
        }
        parent.results = (0..addrs.len()).map(|_| None).collect();
        parent.pending = addrs.len();
        let pid = sub.parent;
        let mut new = Vec::with_capacity(addrs.len());
        for (index, addr) in addrs.into_iter().enumerate() {
            new.push(self.subs.insert(Sub {
                parent: pid,
                index,
                cmd: sub.cmd.clone(),
                route: Route::Node(addr),
                read_only: sub.read_only,
                idempotency: sub.idempotency,
                attempts: 0,
                budget: sub.budget.clone(),
                ask: None,
                on_conn: None,
                state: SubState::Idle,
                last_error: None,
            }));
        }
        if let Some(parent) = self.parents.get_mut(pid) {
            parent.subs.extend(&new);
        }
        for s in new {
            self.dispatch(now, s);
        }
    }

    /// Parks a sub-request until a topology routes it, and asks for one unless a refresh is
    /// already on its way (its answer re-routes every parked request). Fails it at once when
    /// every seed has refused the credentials.
    fn wait_for_topology(&mut self, now: Instant, sid: Id) {
        if let Some(e) = self.refused_by_every_seed() {
            self.complete_sub(sid, Err(e));
            return;
        }
        if let Some(sub) = self.subs.get_mut(sid) {
            sub.state = SubState::WaitingTopology;
            self.waiting_topology.push_back(sid);
        }
        if self.refresh_conn.is_none() {
            let reason = if self.topology.is_some() {
                RefreshReason::Moved
            } else {
                self.refresh_reason_without_topology()
            };
            self.request_refresh_only(now, reason);
        }
    }

    /// A connection to `addr` to put one more request on: the least loaded of the node's
    /// connections, opening one while fewer than `connections_per_node` exist.
    pub(crate) fn conn_for(&mut self, now: Instant, addr: &NodeAddr) -> Result<Id, RequestError> {
        let node = self.nodes.entry(addr.clone()).or_default();
        node.conns.retain(|c| self.conns.get(*c).is_some());
        let load: usize = node.conns.iter().filter_map(|c| self.conns.get(*c)).map(Conn::load).sum();
        if load >= self.cfg.max_queued_per_node {
            return Err(RequestError::QueueFull { addr: addr.clone() });
        }
        if node.conns.len() < self.cfg.connections_per_node {
            if node.conns.is_empty() {
                if let Some(d) = self.down.get(addr).filter(|d| d.until > now) {
                    return Err(RequestError::Unreachable { addr: addr.clone(), error: d.error.clone() });
                }
            }
            let cid = self.open_conn(now, addr);
            if let Some(node) = self.nodes.get_mut(addr) {
                node.conns.push(cid);
            }
            return Ok(cid);
        }
        node.next = node.next.wrapping_add(1);
        let start = node.next % node.conns.len();
        let best = (0..node.conns.len())
            .map(|i| node.conns[(start + i) % node.conns.len()])
            .min_by_key(|c| self.conns.get(*c).map_or(usize::MAX, Conn::load));
        best.ok_or_else(|| RequestError::QueueFull { addr: addr.clone() })
    }

    /// The connection of `addr`'s blocking lane (see [`Cmd::blocking`](super::Cmd::blocking)),
    /// opened if it has none.
    fn blocking_conn_for(&mut self, now: Instant, addr: &NodeAddr) -> Result<Id, RequestError> {
        let node = self.nodes.entry(addr.clone()).or_default();
        if let Some(cid) = node.blocking.filter(|c| self.conns.get(*c).is_some()) {
            if self.conns.get(cid).is_some_and(|c| c.load() >= self.cfg.max_queued_per_node) {
                return Err(RequestError::QueueFull { addr: addr.clone() });
            }
            return Ok(cid);
        }
        if let Some(d) = self.down.get(addr).filter(|d| d.until > now) {
            return Err(RequestError::Unreachable { addr: addr.clone(), error: d.error.clone() });
        }
        let cid = self.open_conn(now, addr);
        if let Some(node) = self.nodes.get_mut(addr) {
            node.blocking = Some(cid);
        }
        Ok(cid)
    }

    /// Opens a connection to `addr` (its handshake follows).
    fn open_conn(&mut self, now: Instant, addr: &NodeAddr) -> Id {
        let node = self.node_stats.id(addr);
        let cid = self.conns.insert(Conn::new(addr.clone(), node));
        self.stats.connects += 1;
        self.outputs.push_back(Output::Connect { conn: ConnId(cid.to_u64()), addr: addr.clone() });
        self.timers.push(now + self.cfg.connect_timeout, Timer::Connect(cid, now));
        cid
    }

    /// A connection finished its handshake: writes what waited for it.
    pub(crate) fn conn_ready(&mut self, cid: Id) {
        let Some(conn) = self.conns.get_mut(cid) else { return };
        conn.state = ConnState::Ready;
        let queued: Vec<Id> = conn.queued.drain(..).collect();
        for sid in queued {
            if self.subs.get(sid).is_some_and(|s| s.state == SubState::Queued(cid)) {
                self.write_sub(cid, sid);
            }
        }
    }
}
