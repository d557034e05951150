//! Inputs from connections: handshake replies, command replies, server errors, lost
//! connections; and completing requests.

use bytes::BytesMut;
use core::time::Duration;
use std::time::Instant;

use crate::node_addr::NodeAddr;
use crate::resp::{DecodeError, Value, decode};
use crate::retry::{self, FailReason, Failure, RetryDecision};
use crate::server_error::{ErrorAction, ServerError, ServerErrorKind};
use crate::topology::{RefreshReason, Topology};

use super::arena::Id;
use super::conn::{ConnState, Expect, READ_BUF_KEEP};
use super::error::{ConnError, ConnErrorKind, RequestError, TimeoutStage};
use super::merge;
use super::timers::Timer;
use super::{Client, ConnId, Event, Output, SubState};

impl Client {
    pub(crate) fn on_connected(&mut self, cid: Id) {
        let cfg = &self.cfg;
        let Some(conn) = self.conns.get_mut(cid) else { return };
        if conn.state != ConnState::Connecting {
            return;
        }
        self.down.remove(&conn.addr);
        let node = conn.node;
        let replica = self.topology.as_ref().is_some_and(|t| t.lists_replica(&conn.addr));
        conn.start_handshake(cfg, replica);
        if let Some(q) = conn.queued_topology.take() {
            conn.write(q.command(), Expect::Topology(q));
        }
        self.node_stats.opened(node);
        self.mark_dirty(cid);
        if !self.conns.get(cid).is_some_and(super::conn::Conn::handshake_pending) {
            self.conn_ready(cid);
        }
    }

    pub(crate) fn on_received(&mut self, now: Instant, cid: Id, data: &[u8]) {
        let limits = self.cfg.limits;
        let Some(conn) = self.conns.get_mut(cid) else { return };
        conn.last_read = Some(now);
        conn.read_buf.extend_from_slice(data);
        loop {
            let Some(conn) = self.conns.get_mut(cid) else { return };
            let buffered = conn.read_buf.len();
            let frame = match decode(&mut conn.read_buf, conn.protocol, &limits) {
                Ok(Some(v)) => {
                    conn.read_buf_grown |= buffered.saturating_sub(conn.read_buf.len()) > READ_BUF_KEEP;
                    v
                }
                Ok(None) => {
                    if conn.read_buf_grown && conn.read_buf.is_empty() {
                        // Let the large allocation go (the frame's values may still share it).
                        conn.read_buf = BytesMut::new();
                        conn.read_buf_grown = false;
                    }
                    return;
                }
                Err(e) => {
                    self.protocol_error(now, cid, e);
                    return;
                }
            };
            if let Value::Push(_) = frame {
                self.outputs
                    .push_back(Output::Event(Event::Push { conn: ConnId(cid.to_u64()), value: frame }));
                continue;
            }
            let Some(expect) = conn.inflight.pop_front() else {
                // A reply nobody asked for: the stream is out of step, so nothing on it can be
                // trusted. Nothing is in flight, so nothing is lost.
                self.stats.protocol_errors += 1;
                let e =
                    ConnError::new(ConnErrorKind::Protocol, "a reply arrived with no request waiting for it");
                self.on_conn_lost(now, cid, &e, None);
                self.outputs.push_back(Output::Close { conn: ConnId(cid.to_u64()) });
                return;
            };
            self.on_reply(now, cid, expect, frame);
        }
    }

    fn protocol_error(&mut self, now: Instant, cid: Id, e: DecodeError) {
        self.stats.protocol_errors += 1;
        let ce = ConnError::new(ConnErrorKind::Protocol, e.to_string());
        self.on_conn_lost(now, cid, &ce, Some(e));
        self.outputs.push_back(Output::Close { conn: ConnId(cid.to_u64()) });
    }

    fn on_reply(&mut self, now: Instant, cid: Id, expect: Expect, value: Value) {
        match expect {
            Expect::Sub(sid) => self.on_sub_reply(now, cid, sid, value),
            Expect::Asking => {}
            Expect::Topology(q) => self.on_topology_reply(now, cid, q, value),
            Expect::Hello => match value {
                Value::Error(msg) => {
                    let e = ServerError::new(msg);
                    if is_auth_error(&e) {
                        self.handshake_failed(now, cid, e);
                        return;
                    }
                    // No HELLO or no RESP3 on this server: RESP2 with AUTH and CLIENT SETNAME.
                    let cfg = &self.cfg;
                    let topology = self.topology.as_ref();
                    if let Some(conn) = self.conns.get_mut(cid) {
                        let replica = topology.is_some_and(|t| t.lists_replica(&conn.addr));
                        conn.write_resp2_handshake(cfg, replica);
                    }
                    self.mark_dirty(cid);
                }
                _ => {
                    let cfg = &self.cfg;
                    let topology = self.topology.as_ref();
                    if let Some(conn) = self.conns.get_mut(cid) {
                        let replica = topology.is_some_and(|t| t.lists_replica(&conn.addr));
                        conn.write_readonly_if_needed(cfg, replica);
                    }
                    self.mark_dirty(cid);
                }
            },
            // A standalone node refuses `READONLY` (sent in `Mode::Auto` before the node is
            // known): its replicas serve reads without it.
            Expect::ReadOnly if matches!(&value, Value::Error(e) if crate::topology::is_cluster_disabled(e)) =>
                {}
            Expect::Mode => {
                if let Value::Error(msg) = value {
                    // Reads there may meet MOVED, writes the old behaviour: nothing to fail.
                    let e = ServerError::new(msg);
                    tracing::debug!(error = %e, "slotcache: READONLY/READWRITE refused");
                }
            }
            Expect::Auth | Expect::SetName | Expect::ReadOnly => {
                if let Value::Error(msg) = value {
                    self.handshake_failed(now, cid, ServerError::new(msg));
                    return;
                }
            }
        }
        if self.conns.get(cid).is_some_and(|c| c.state == ConnState::Handshaking && !c.handshake_pending()) {
            self.conn_ready(cid);
        }
    }

    /// A handshake command was refused: the connection is useless, and retrying the requests
    /// waiting on it would meet the same answer, so they fail with it.
    fn handshake_failed(&mut self, now: Instant, cid: Id, e: ServerError) {
        let Some(conn) = self.conns.remove(cid) else { return };
        self.forget_conn(&conn.addr, cid);
        self.node_stats.bump(conn.node, |s| s.connection_errors += 1);
        self.outputs.push_back(Output::Close { conn: ConnId(cid.to_u64()) });
        let error = if is_auth_error(&e) {
            RequestError::Auth { addr: conn.addr.clone(), error: e.clone() }
        } else {
            RequestError::Server(e.clone())
        };
        for sid in conn.queued {
            self.complete_sub(sid, Err(error.clone()));
        }
        if is_auth_error(&e) {
            self.seed_refused(conn.addr.clone(), error.clone());
        }
        for expect in conn.inflight {
            match expect {
                Expect::Sub(sid) => self.complete_sub(sid, Err(error.clone())),
                Expect::Topology(_) => self.refresh_failed(now, &format!("{}: {e}", conn.addr)),
                _ => {}
            }
        }
        if self.refresh_conn.is_some_and(|(c, _)| c == cid) {
            self.refresh_failed(now, &format!("{}: {e}", conn.addr));
        }
    }

    fn on_sub_reply(&mut self, now: Instant, cid: Id, sid: Id, value: Value) {
        if self.subs.get(sid).is_none_or(|s| s.state != SubState::InFlight(cid)) {
            return; // its request timed out meanwhile
        }
        let node = self.conns.get(cid).map(|c| c.node);
        match value {
            Value::Error(msg) => {
                let addr = self.conns.get(cid).map(|c| c.addr.clone());
                let e = ServerError::new(msg);
                if let Some(node) = node {
                    self.node_stats.bump(node, |s| match e.kind() {
                        ServerErrorKind::Moved { .. } => s.moved += 1,
                        ServerErrorKind::Ask { .. } => s.ask += 1,
                        // The script cache's normal miss: the caller sends the script again.
                        ServerErrorKind::NoScript => {}
                        _ => s.error_replies += 1,
                    });
                }
                let refused_auth =
                    is_auth_error(&e) && self.subs.get(sid).is_some_and(|s| super::reauth::is_auth(&s.cmd));
                match addr {
                    Some(addr) if refused_auth => {
                        self.complete_sub(sid, Err(RequestError::Auth { addr, error: e }))
                    }
                    addr => self.on_server_error(now, sid, addr, e),
                }
            }
            v => {
                if let Some(node) = node {
                    self.node_stats.touch(node);
                }
                self.complete_sub(sid, Ok(v));
            }
        }
    }

    fn on_server_error(&mut self, now: Instant, sid: Id, origin: Option<NodeAddr>, e: ServerError) {
        let origin = origin.unwrap_or_else(|| NodeAddr::new("", 0));
        let reason = match e.kind() {
            ServerErrorKind::Moved { .. } => {
                self.stats.moved += 1;
                RefreshReason::Moved
            }
            ServerErrorKind::Ask { .. } => {
                self.stats.ask += 1;
                RefreshReason::Moved
            }
            ServerErrorKind::TryAgain => {
                self.stats.tryagain += 1;
                RefreshReason::Manual
            }
            ServerErrorKind::ClusterDown | ServerErrorKind::MasterDown => {
                self.stats.clusterdown += 1;
                RefreshReason::ClusterDown
            }
            ServerErrorKind::ReadOnly => RefreshReason::ReadOnly,
            _ => RefreshReason::Manual,
        };
        // A MOVED fixes the slot map at once, whatever becomes of this request.
        if let ErrorAction::Redirect { slot, endpoint } = e.action() {
            let patched = self
                .topology
                .as_mut()
                .is_some_and(|t| t.patch_slot(slot, endpoint.resolve(&origin)) == Ok(true));
            if patched {
                self.patched.push(crate::topology::SlotRange::single(slot));
                if self.patched.len() > 1024 {
                    self.patched = crate::topology::union_of_ranges(std::mem::take(&mut self.patched));
                }
            }
        }
        tracing::debug!(node = %origin, reply = %e, "slotcache: server error");
        let error = RequestError::Server(e.clone());
        // A command addressed to one node is not redirected: sending it to that node again
        // would only be refused again, and the caller chose the node. The redirect is its
        // answer (the map was patched above; a refresh is asked for).
        let redirect = matches!(e.action(), ErrorAction::Redirect { .. } | ErrorAction::Ask { .. });
        if redirect && self.subs.get(sid).is_some_and(|s| matches!(s.route, super::Route::Node(_))) {
            self.request_refresh_only(now, reason);
            self.complete_sub(sid, Err(error));
            return;
        }
        self.retry_or_fail(now, sid, Failure::Server { error: &e, origin: &origin }, error, reason);
    }

    /// Asks the retry policy what to do after a failed attempt, and does it.
    pub(crate) fn retry_or_fail(
        &mut self,
        now: Instant,
        sid: Id,
        failure: Failure<'_>,
        error: RequestError,
        reason: RefreshReason,
    ) {
        let Some(sub) = self.subs.get_mut(sid) else { return };
        sub.last_error = Some(error.clone());
        match retry::decide(&mut sub.budget, failure, sub.idempotency, now, &self.cfg.retry, &mut self.rng) {
            RetryDecision::RetryNow { refresh, .. } => {
                sub.ask = None;
                if refresh {
                    self.request_refresh_only(now, reason);
                }
                self.dispatch(now, sid);
            }
            RetryDecision::Ask(target) => {
                sub.ask = Some(target);
                self.dispatch(now, sid);
            }
            RetryDecision::RetryAt { at, refresh } => {
                sub.state = SubState::WaitingRetry;
                if refresh {
                    self.request_refresh_only(now, reason);
                }
                self.timers.push(at, Timer::Retry(sid));
            }
            RetryDecision::Fail(why) => {
                let error = match why {
                    FailReason::MaybeExecuted => match error {
                        RequestError::Unreachable { addr, error } => {
                            RequestError::ConnectionLost { addr, error }
                        }
                        other => other,
                    },
                    FailReason::RedirectLoop { slot } => RequestError::RedirectLoop { slot },
                    FailReason::TooManyRedirects { .. } => match sub.route {
                        super::Route::Slot(slot) => RequestError::RedirectLoop { slot },
                        _ => error,
                    },
                    _ => error,
                };
                self.complete_sub(sid, Err(error));
            }
        }
    }

    /// A connection closed, failed to open, or sent garbage.
    pub(crate) fn on_conn_lost(
        &mut self,
        now: Instant,
        cid: Id,
        err: &ConnError,
        protocol: Option<DecodeError>,
    ) {
        let Some(conn) = self.conns.remove(cid) else { return };
        self.forget_conn(&conn.addr, cid);
        tracing::debug!(node = %conn.addr, error = %err, in_flight = conn.inflight.len(), "slotcache: connection lost");
        if conn.state == ConnState::Connecting {
            self.mark_down(now, &conn.addr, err);
            self.node_stats.bump(conn.node, |s| s.connection_errors += 1);
        } else {
            self.stats.disconnects += 1;
            self.node_stats.lost(conn.node);
        }
        // Part of a reply was buffered: the connection ended mid-reply (a truncated reply, then
        // a close). Say so: "closed the connection" alone reads like an idle close.
        let mid_reply;
        let err = if protocol.is_none() && !conn.read_buf.is_empty() {
            mid_reply = ConnError::new(
                err.kind,
                format!(
                    "{} in the middle of a reply ({} bytes of an unfinished reply received)",
                    err.message,
                    conn.read_buf.len()
                ),
            );
            &mid_reply
        } else {
            err
        };
        let addr = conn.addr.clone();
        let unreachable = RequestError::Unreachable { addr: addr.clone(), error: err.clone() };
        // Refused before it was ready for a reason retrying does not fix (a TLS handshake that
        // did not verify): what waits on it fails now, not at its deadline.
        let refused = conn.state != ConnState::Ready && err.is_permanent();
        if refused && self.topology.is_none() {
            self.seed_refused(addr.clone(), unreachable.clone());
        }
        for expect in conn.inflight {
            let Expect::Sub(sid) = expect else { continue };
            let Some(sub) = self.subs.get(sid) else { continue };
            if sub.state != SubState::InFlight(cid) {
                continue;
            }
            if let Some(e) = &protocol {
                self.complete_sub(sid, Err(RequestError::Protocol { addr: addr.clone(), error: *e }));
            } else {
                let lost = if refused { Failure::Refused } else { Failure::ConnectionLost { written: true } };
                self.retry_or_fail(now, sid, lost, unreachable.clone(), RefreshReason::ConnectionLost);
            }
        }
        for sid in conn.queued {
            if self.subs.get(sid).is_some_and(|s| s.state == SubState::Queued(cid)) {
                let lost =
                    if refused { Failure::Refused } else { Failure::ConnectionLost { written: false } };
                self.retry_or_fail(now, sid, lost, unreachable.clone(), RefreshReason::ConnectionLost);
            }
        }
        if self.refresh_conn.is_some_and(|(c, _)| c == cid) {
            self.refresh_failed(now, &format!("{addr}: {err}"));
        }
        self.request_refresh_only(now, RefreshReason::ConnectionLost);
    }

    /// Records a failed connection attempt: the next one waits [`connect_backoff`].
    fn mark_down(&mut self, now: Instant, addr: &NodeAddr, err: &ConnError) {
        let failures = self.down.get(addr).map_or(0, |d| d.failures).saturating_add(1);
        let wait = connect_backoff(failures);
        self.down.insert(addr.clone(), super::Down { until: now + wait, failures, error: err.clone() });
    }

    pub(crate) fn forget_conn(&mut self, addr: &NodeAddr, cid: Id) {
        if let Some(node) = self.nodes.get_mut(addr) {
            if node.forget(cid) {
                self.nodes.remove(addr);
            }
        }
    }

    /// Records a sub-request's result; completes its request when it was the last.
    pub(crate) fn complete_sub(&mut self, sid: Id, result: Result<Value, RequestError>) {
        let Some(sub) = self.subs.remove(sid) else { return };
        let answered_on = match (&result, sub.state) {
            (Ok(_), SubState::InFlight(cid)) => Some(cid),
            _ => None,
        };
        let node = match sub.state {
            SubState::InFlight(cid) => self.conns.get(cid).map(|c| c.node),
            _ => None,
        };
        let Some(parent) = self.parents.get_mut(sub.parent) else { return };
        if node.is_some() {
            parent.node = node;
        }
        if let Some(slot @ None) = parent.results.get_mut(sub.index) {
            *slot = Some(result);
            parent.pending -= 1;
        }
        let has_followers = parent.results.len() > 1 && parent.pending > 0;
        if has_followers {
            self.release_followers(sub.parent, sub.index, answered_on);
        }
        let Some(parent) = self.parents.get(sub.parent) else { return };
        if parent.pending == 0 {
            self.finish_parent(sub.parent);
        }
    }

    pub(crate) fn finish_parent(&mut self, pid: Id) {
        // Held, not freed: the request's index must not name another request before the
        // adapter has this completion (`poll_output` releases it), or an adapter that files
        // its callers by index would hand one caller's slot to the next.
        let Some(parent) = self.parents.remove_held(pid) else { return };
        let results = parent
            .results
            .into_iter()
            .map(|r| {
                r.unwrap_or(Err(RequestError::Internal {
                    what: "a part of the request finished without a result",
                }))
            })
            .collect();
        let result = merge::finish(parent.shape, results);
        if let Err(e) = &result {
            self.stats.failed += 1;
            tracing::debug!(request = pid.to_u64(), error = %e, "slotcache: request failed");
        } else {
            tracing::trace!(request = pid.to_u64(), "slotcache: completed");
        }
        let node = parent.node;
        self.outputs.push_back(Output::Completed { id: super::RequestId(pid.to_u64()), result, node });
    }

    /// A request's deadline passed: every unfinished part fails with what it was waiting for.
    pub(crate) fn expire_parent(&mut self, pid: Id) {
        self.stats.timeouts += 1;
        let Some(parent) = self.parents.get(pid) else { return };
        let (subs, deadline) = (parent.subs.clone(), parent.deadline);
        for sid in subs {
            let Some(sub) = self.subs.get(sid) else { continue };
            if let SubState::InFlight(cid) = sub.state {
                // Its reply is abandoned: if it never comes, the connection is stalled.
                self.arm_stall_check(cid, deadline);
                if let Some(node) = self.conns.get(cid).map(|c| c.node) {
                    self.node_stats.bump(node, |s| s.timeouts += 1);
                }
            }
            let Some(sub) = self.subs.get(sid) else { continue };
            let attempts = sub.attempts;
            let error = match sub.state {
                SubState::InFlight(_) => RequestError::Timeout { stage: TimeoutStage::Reply, attempts },
                SubState::WaitingTopology if self.topology.is_none() => {
                    self.last_seed_refusal().unwrap_or_else(|| RequestError::NoTopology {
                        seeds: self.cfg.seeds.clone(),
                        detail: self
                            .last_refresh_error
                            .clone()
                            .unwrap_or_else(|| "no seed answered yet".into()),
                    })
                }
                SubState::WaitingTopology => match (&sub.route, &sub.last_error) {
                    (_, Some(e)) => e.clone(),
                    (super::Route::Slot(slot), None) => RequestError::NoRoute {
                        slot: *slot,
                        detail: self.last_refresh_error.clone().unwrap_or_else(|| "no node serves it".into()),
                    },
                    _ => RequestError::Timeout { stage: TimeoutStage::Topology, attempts },
                },
                SubState::Queued(_) => sub
                    .last_error
                    .clone()
                    .unwrap_or(RequestError::Timeout { stage: TimeoutStage::Connect, attempts }),
                SubState::Held => RequestError::Timeout { stage: TimeoutStage::Reply, attempts },
                SubState::WaitingRetry | SubState::Idle => sub
                    .last_error
                    .clone()
                    .unwrap_or(RequestError::Timeout { stage: TimeoutStage::Retry, attempts }),
            };
            self.complete_sub(sid, Err(error));
        }
        // Parts that were never dispatched (none today) would leave the request pending.
        if self.parents.get(pid).is_some() {
            self.fail_parent(pid, &RequestError::Timeout { stage: TimeoutStage::Reply, attempts: 0 });
        }
    }

    /// Fails every unfinished part of a request with `error`.
    pub(crate) fn fail_parent(&mut self, pid: Id, error: &RequestError) {
        let Some(parent) = self.parents.get_mut(pid) else { return };
        for r in &mut parent.results {
            if r.is_none() {
                *r = Some(Err(error.clone()));
            }
        }
        let subs = std::mem::take(&mut parent.subs);
        parent.pending = 0;
        for sid in subs {
            self.subs.remove(sid);
        }
        self.finish_parent(pid);
    }

    /// Records a refresh trigger without starting anything (the caller's drain does).
    pub(crate) fn request_refresh_only(&mut self, now: Instant, reason: RefreshReason) {
        let n = self.node_count();
        self.refresh.request(now, reason, n, &mut self.rng);
    }

    /// Nodes in the topology, or seeds before the first one.
    pub(crate) fn node_count(&self) -> usize {
        self.topology.as_ref().map_or(self.cfg.seeds.len(), Topology::node_count)
    }
}

/// The first wait before dialling a node again after a failed connection attempt.
pub(crate) const CONNECT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// The longest such wait.
pub(crate) const CONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The wait before the next dial of a node after `failures` consecutive failed attempts (at
/// least 1): 10 ms after the first, doubling per failure (20, 40, ... 640 ms), capped at 1 s.
pub(crate) fn connect_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(7);
    CONNECT_BACKOFF_FIRST.saturating_mul(1 << doublings).min(CONNECT_BACKOFF_MAX)
}

fn is_auth_error(e: &ServerError) -> bool {
    matches!(e.kind(), ServerErrorKind::NoAuth | ServerErrorKind::WrongPass | ServerErrorKind::NoPerm)
}
