//! Stalled connections: closing a connection whose oldest unanswered reply nobody waits for any
//! more once it has stayed silent for [`ClientConfig::stall_timeout`](super::ClientConfig::stall_timeout).
//!
//! Replies come back in order, so a connection whose head reply never comes (a half-open
//! connection, bytes a stalled node dropped, a blocking command that outlived its request)
//! holds every later reply too: each later request on it would time out, until the OS closed
//! the socket. When a request's deadline passes while one of its commands is in flight, the
//! connection is checked `stall_timeout` later: if the reply at the head of its FIFO still
//! belongs to no waiting request (its request timed out, or the topology query it answers was
//! given up) and no byte has arrived on it for `stall_timeout`, it is closed and replaced. A
//! head reply that some request still waits for (a `WAIT 1 250`, a long `EVAL`, a blocking
//! command, all within their request's timeout) never closes its connection.

use std::time::Instant;

use crate::retry::{Failure, Idempotency};
use crate::topology::RefreshReason;

use super::arena::Id;
use super::conn::{ConnState, Expect};
use super::error::{ConnError, ConnErrorKind, RequestError, TimeoutStage};
use super::timers::Timer;
use super::{Client, ConnId, Output, SubState};

impl Client {
    /// A reply on `cid` stopped being awaited at `since` (its request's deadline, or the
    /// topology query's): check the connection `stall_timeout` later.
    pub(crate) fn arm_stall_check(&mut self, cid: Id, since: Instant) {
        if self.conns.get(cid).is_some() {
            self.timers.push(since + self.cfg.stall_timeout, Timer::Stall(cid));
        }
    }

    /// The check armed by [`Client::arm_stall_check`]: closes the connection if its head reply
    /// is abandoned and it has been silent for `stall_timeout`; checks again later if bytes
    /// arrived meanwhile.
    pub(crate) fn check_stall(&mut self, now: Instant, cid: Id) {
        let Some(conn) = self.conns.get(cid) else { return };
        if conn.state != ConnState::Ready || !self.head_abandoned(cid) {
            // Nothing owed, or a live request waits for the head reply: its own deadline arms
            // another check if it times out.
            return;
        }
        let quiet_until = conn.last_read.map(|read| read + self.cfg.stall_timeout);
        if let Some(at) = quiet_until.filter(|at| *at > now) {
            self.timers.push(at, Timer::Stall(cid));
            return;
        }
        self.close_stalled(now, cid);
    }

    /// Whether the next reply on `cid` answers nothing anyone waits for.
    fn head_abandoned(&self, cid: Id) -> bool {
        let Some(conn) = self.conns.get(cid) else { return false };
        for expect in &conn.inflight {
            return match *expect {
                Expect::Asking | Expect::Mode => continue,
                Expect::Sub(sid) => self.subs.get(sid).is_none_or(|s| s.state != SubState::InFlight(cid)),
                Expect::Topology(_) => self.refresh_conn.is_none_or(|(c, _)| c != cid),
                // A handshake reply: the connect timer's business.
                Expect::Hello | Expect::Auth | Expect::SetName | Expect::ReadOnly => false,
            };
        }
        false
    }

    /// Closes a stalled connection. What was in flight behind the abandoned head is retried
    /// where that is safe (idempotent commands, on a new connection, within their deadline);
    /// a non-idempotent one may have run, so it fails with `ConnectionLost`.
    fn close_stalled(&mut self, now: Instant, cid: Id) {
        let Some(conn) = self.conns.remove(cid) else { return };
        self.forget_conn(&conn.addr, cid);
        self.stats.stalled += 1;
        self.outputs.push_back(Output::Close { conn: ConnId(cid.to_u64()) });
        let grace = self.cfg.stall_timeout;
        tracing::debug!(node = %conn.addr, in_flight = conn.inflight.len(), ?grace, "slotcache: stalled connection closed");
        let error = ConnError::new(
            ConnErrorKind::Stalled,
            format!("no reply for {grace:?} after a request timed out on it; closed by the client"),
        );
        let addr = conn.addr.clone();
        for expect in conn.inflight {
            let Expect::Sub(sid) = expect else { continue };
            let Some(sub) = self.subs.get(sid).filter(|s| s.state == SubState::InFlight(cid)) else {
                continue;
            };
            // An idempotent command is resent; if its time runs out meanwhile, it timed out.
            let failed = if sub.idempotency == Idempotency::Idempotent {
                RequestError::Timeout { stage: TimeoutStage::Reply, attempts: sub.attempts }
            } else {
                RequestError::ConnectionLost { addr: addr.clone(), error: error.clone() }
            };
            let lost = Failure::ConnectionLost { written: true };
            self.retry_or_fail(now, sid, lost, failed, RefreshReason::ConnectionLost);
        }
        for sid in conn.queued {
            if self.subs.get(sid).is_some_and(|s| s.state == SubState::Queued(cid)) {
                let failed = RequestError::Unreachable { addr: addr.clone(), error: error.clone() };
                let lost = Failure::ConnectionLost { written: false };
                self.retry_or_fail(now, sid, lost, failed, RefreshReason::ConnectionLost);
            }
        }
        if self.refresh_conn.is_some_and(|(c, _)| c == cid) {
            self.refresh_failed(now, &format!("{addr}: {error}"));
        }
        self.request_refresh_only(now, RefreshReason::ConnectionLost);
    }
}
