//! Credentials that rotate: [`Client::set_credentials`] switches the credentials new
//! connections authenticate with, and re-authenticates every open one with `AUTH`.

use std::time::Instant;

use crate::node_addr::NodeAddr;
use crate::retry::{Budget, Idempotency};

use super::arena::Id;
use super::conn::ConnState;
use super::error::SubmitError;
use super::plan::Shape;
use super::request::Cmd;
use super::timers::Timer;
use super::{Client, Parent, RequestId, Route, Sub, SubState};
use crate::password::Password;

impl Client {
    /// Switches to new credentials (`username` `None`: the default user) without dropping a
    /// request.
    ///
    /// Connections opened from now on authenticate with them. Every connection already open
    /// (or finishing its handshake) gets `AUTH username password` written behind the commands
    /// already on it, so it is ordered with the traffic on that connection: commands written
    /// before it run as the old identity, commands written after it as the new one, and none
    /// waits or fails for it.
    ///
    /// The returned request completes with [`Reply::PerNode`](super::Reply::PerNode): one
    /// result per re-authenticated connection (an address may repeat when there are several
    /// connections per node), `+OK`, or [`RequestError::Auth`](super::RequestError::Auth) when
    /// the server refused the credentials (`WRONGPASS`): that connection keeps its previous
    /// identity, and connections opened later fail their handshake with the same typed error
    /// until valid credentials are set. A connection lost meanwhile reports
    /// [`RequestError::ConnectionLost`](super::RequestError::ConnectionLost) (its replacement
    /// uses the new credentials). No open connection: it completes at once with no result.
    ///
    /// # Errors
    /// [`SubmitError::Closed`] after [`Client::close`].
    pub fn set_credentials(
        &mut self,
        now: Instant,
        username: Option<String>,
        password: Password,
    ) -> Result<RequestId, SubmitError> {
        if self.closed {
            return Err(SubmitError::Closed);
        }
        self.cfg.username = username;
        self.cfg.password = Some(password);
        let open: Vec<(Id, NodeAddr)> = self
            .conns
            .ids()
            .into_iter()
            .filter_map(|cid| self.conns.get(cid).map(|c| (cid, c)))
            .filter(|(_, c)| c.state != ConnState::Connecting)
            .map(|(cid, c)| (cid, c.addr.clone()))
            .collect();
        let deadline = now + self.cfg.request_timeout;
        let addrs = open.iter().map(|(_, a)| a.clone()).collect();
        let parent = self.parents.insert(Parent {
            deadline,
            pending: open.len(),
            shape: Shape::PerNode(addrs),
            results: (0..open.len()).map(|_| None).collect(),
            subs: Vec::with_capacity(open.len()),
            pinned: Vec::new(),
            node: None,
        });
        self.timers.push(deadline, Timer::Deadline(parent));
        for (index, (cid, addr)) in open.into_iter().enumerate() {
            let cmd = self.auth_command();
            let sid = self.subs.insert(Sub {
                parent,
                index,
                cmd,
                route: Route::Node(addr),
                read_only: false,
                idempotency: Idempotency::Idempotent,
                attempts: 0,
                budget: Budget::new(deadline),
                ask: None,
                on_conn: Some(cid),
                state: SubState::Idle,
                last_error: None,
            });
            if let Some(p) = self.parents.get_mut(parent) {
                p.subs.push(sid);
            }
            // Written now even while the handshake is still answering: behind it, and before
            // the requests that wait for the handshake to finish.
            self.write_sub(cid, sid);
        }
        if self.parents.get(parent).is_some_and(|p| p.pending == 0) {
            self.finish_parent(parent);
        }
        self.stats.requests += 1;
        Ok(RequestId(parent.to_u64()))
    }

    /// `AUTH [user] password` with the current credentials.
    fn auth_command(&self) -> Cmd {
        let mut cmd = Cmd::new("AUTH");
        if let Some(user) = &self.cfg.username {
            cmd.push_arg(user.as_str());
        }
        if let Some(p) = &self.cfg.password {
            cmd.push_arg(p.expose());
        }
        cmd
    }
}

/// Whether a command is `AUTH` (its refusal is then [`RequestError::Auth`](super::RequestError::Auth)).
pub(crate) fn is_auth(cmd: &Cmd) -> bool {
    cmd.args().first().is_some_and(|name| name.as_ref().eq_ignore_ascii_case(b"AUTH"))
}
