//! The cluster client state machine (which also serves a standalone node: see [`Mode`]).
//!
//! [`Client`] ties the core together in the shape quinn-proto and str0m use. The caller (an
//! adapter, or a test's simulated cluster) owns sockets and the clock, and runs this loop:
//!
//! 1. [`Client::submit`] a request, or [`Client::handle_input`] an event (bytes received, a
//!    connection opened or lost, a timer fired), always with the current time;
//! 2. drain [`Client::poll_output`] until it returns [`Output::Wait`]: open the connections it
//!    asks for, write the bytes it hands out, close what it closes, deliver completed requests;
//! 3. sleep until the instant in `Wait` (or until the next input), then go to 1.
//!
//! Rules: the core never reads a clock, sleeps, spawns or touches a socket; time arrives with
//! every call and never goes backwards; randomness comes from a generator seeded in the
//! configuration; `handle_input` never fails — protocol faults become a `Close` plus failed
//! completions. Every mutation must be followed by a full drain of `poll_output`.

mod arena;
mod config;
mod conn;
mod dispatch;
mod error;
#[cfg(any(test, feature = "_fuzz"))]
#[doc(hidden)]
pub mod fuzz;
mod input;
mod merge;
mod mode;
mod node_stats;
#[cfg(test)]
mod pipeline_tests;
mod plan;
mod reauth;
mod refresh;
mod request;
mod stall;
#[cfg(test)]
mod standalone_tests;
mod stats;
#[cfg(test)]
mod tests;
mod timers;
mod tls_failure;

use bytes::Bytes;
use foldhash::fast::FixedState;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::node_addr::NodeAddr;
use crate::resp::Value;
use crate::retry::{Budget, Idempotency};
use crate::rng::Rng;
use crate::topology::{RefreshPolicy, RefreshReason, SlotRange, Topology};

pub use crate::password::Password;
pub use config::{ClientConfig, ClientSettings, MAX_STALL_TIMEOUT, ReadFrom, ReadFromError};
pub use error::{ConfigError, ConnError, ConnErrorKind, RequestError, SubmitError, TimeoutStage};
pub use mode::{Mode, ModeError};
pub use node_stats::{NodeId, NodeStats};
pub use plan::Prepared;
pub use request::{Cmd, Reply, Request, RequestKind, ToArg};
pub use stats::Stats;
pub use tls_failure::TlsFailure;

use arena::{Arena, Id};
use conn::Conn;
use plan::Shape;
use timers::{Timer, Timers};

/// Identifies one connection the client asked the adapter to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    fn id(self) -> Id {
        Id::from_u64(self.0)
    }
}

/// Identifies one submitted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    /// A small number, unique among the requests whose [`Output::Completed`] has not been
    /// returned by [`Client::poll_output`] yet (reused only after that): an index for the
    /// adapter's table of waiting callers, so it needs no hash map. A request can complete
    /// inside [`Client::submit`] or [`Client::handle_input`], and the adapter may submit more
    /// before it drains that completion: the index stays reserved meanwhile.
    #[must_use]
    pub const fn index(self) -> usize {
        Id::from_u64(self.0).index()
    }
}

/// An event the adapter reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A timer the client asked for (or any earlier wake-up) fired.
    Timeout,
    /// The connection asked for by [`Output::Connect`] is open (TLS included).
    Connected(ConnId),
    /// The connection could not be opened.
    ConnectFailed(ConnId, ConnError),
    /// Bytes arrived on a connection.
    Received(ConnId, &'a [u8]),
    /// The connection closed or failed.
    Disconnected(ConnId, ConnError),
}

/// Something the client wants done, or has done.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Output {
    /// Open a connection to `addr` (with TLS when configured) and report
    /// [`Input::Connected`] or [`Input::ConnectFailed`] for `conn`.
    Connect {
        /// The id to report back.
        conn: ConnId,
        /// Where to connect.
        addr: NodeAddr,
    },
    /// Write these bytes, in order, on `conn`.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// Close `conn`; the client has forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// A request finished.
    Completed {
        /// The request.
        id: RequestId,
        /// Its reply or error.
        result: Result<Reply, RequestError>,
        /// The node that answered (the last part to finish, for a request of several parts);
        /// `None` when no node did (a timeout before any reply, a refusal, a lost connection).
        node: Option<NodeId>,
    },
    /// Something the caller may want to know.
    Event(Event),
    /// Nothing more to do until this instant (a timer) or the next input. `None`: no timer.
    Wait(Option<Instant>),
}

/// Notable changes, for observability and for an in-process cache in front of the cluster.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A new topology was applied.
    TopologyChanged {
        /// The topology's epoch after the change.
        epoch: u64,
        /// Slot ranges whose primary changed (an L1 cache drops entries of exactly these).
        changed: Vec<SlotRange>,
    },
    /// A RESP3 push message (client-tracking invalidation, pub/sub).
    Push {
        /// The connection it arrived on.
        conn: ConnId,
        /// The message.
        value: Value,
    },
}

/// Where a sub-request goes.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// The node serving this slot (primary, or a replica for reads per `ReadFrom`).
    Slot(crate::slot::Slot),
    /// A fixed node.
    Node(NodeAddr),
    /// Any primary (keyless commands such as `PING`).
    Any,
    /// Every primary (and every replica too when `replicas`): expanded into one sub-request
    /// per node once the topology is known.
    Fanout {
        /// Whether replicas are included.
        replicas: bool,
    },
}

/// Where a sub-request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubState {
    /// Not placed anywhere (being routed).
    Idle,
    /// Waiting on a connection's handshake.
    Queued(Id),
    /// Written on a connection.
    InFlight(Id),
    /// Waiting for a backoff to pass.
    WaitingRetry,
    /// Waiting for an earlier command of its pipeline to answer (see [`Cmd::after`]).
    Held,
    /// Waiting for a topology that routes it.
    WaitingTopology,
}

/// One command to one node: a request is one or more of these.
#[derive(Debug)]
struct Sub {
    parent: Id,
    index: usize,
    cmd: Cmd,
    route: Route,
    read_only: bool,
    idempotency: Idempotency,
    /// Times written to a connection.
    attempts: u32,
    /// Attempts, deadline and redirect history, for the retry policy.
    budget: Budget,
    ask: Option<NodeAddr>,
    /// The one connection it may go on (it follows a command that answered there).
    on_conn: Option<Id>,
    state: SubState,
    last_error: Option<RequestError>,
}

/// A submitted request.
#[derive(Debug)]
struct Parent {
    deadline: Instant,
    pending: usize,
    shape: Shape,
    results: Vec<Option<Result<Value, RequestError>>>,
    subs: Vec<Id>,
    /// The connection each node's commands of this request use, so that they stay in order on
    /// one connection (what `WAIT` after a write needs). Only requests of several commands pin.
    pinned: Vec<(NodeAddr, Id)>,
    /// The node whose reply finished the last part so far.
    node: Option<NodeId>,
}

/// The connections of one node.
#[derive(Debug, Default)]
struct NodeConns {
    conns: Vec<Id>,
    next: usize,
    /// The blocking lane's connection (see [`Cmd::blocking`]).
    blocking: Option<Id>,
}

impl NodeConns {
    /// Forgets connection `cid`; whether the node has no connection left.
    fn forget(&mut self, cid: Id) -> bool {
        self.conns.retain(|c| *c != cid);
        if self.blocking == Some(cid) {
            self.blocking = None;
        }
        self.conns.is_empty() && self.blocking.is_none()
    }
}

/// A node that refused a connection.
#[derive(Debug, Clone)]
struct Down {
    until: Instant,
    failures: u32,
    error: ConnError,
}

/// The sans-IO Valkey Cluster client. See the [module docs](self) for the run loop.
#[derive(Debug)]
pub struct Client {
    cfg: ClientConfig,
    rng: Rng,
    topology: Option<Topology>,
    epoch: u64,
    /// Slots a `MOVED` gave another owner since the last [`Event::TopologyChanged`]: reported
    /// with the next one, even when the refreshed topology matches the patched map.
    patched: Vec<SlotRange>,
    refresh: RefreshPolicy,
    /// The connection carrying the refresh in flight, with its deadline.
    refresh_conn: Option<(Id, Instant)>,
    refresh_cursor: usize,
    last_refresh_error: Option<String>,
    /// Seeds that refused the client (credentials, TLS) before the first topology, with the
    /// typed error.
    seed_refusals: Vec<(NodeAddr, RequestError)>,
    conns: Arena<Conn>,
    /// Keyed by the cluster's own addresses, nothing an outsider chooses: foldhash with a fixed
    /// seed (fast, the same order in every run; `core/benches/hasher.rs`), not SipHash.
    nodes: HashMap<NodeAddr, NodeConns, FixedState>,
    /// Nodes whose last connection attempt failed: no new attempt before the instant, so a
    /// dead node costs one connect per backoff, not one per request.
    down: HashMap<NodeAddr, Down>,
    parents: Arena<Parent>,
    subs: Arena<Sub>,
    waiting_topology: VecDeque<Id>,
    timers: Timers,
    outputs: VecDeque<Output>,
    dirty: Vec<Id>,
    stats: Stats,
    /// Counters per node.
    node_stats: node_stats::NodeTable,
    /// When the topology in use was fetched (its last successful refresh).
    topology_fetched: Option<Instant>,
    closed: bool,
}

impl Client {
    /// A client with this configuration; it asks for its first topology at once.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn new(cfg: ClientConfig, now: Instant) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let mut rng = Rng::new(cfg.rng_seed);
        let mut refresh = RefreshPolicy::new(cfg.refresh.clone()).map_err(ConfigError::Refresh)?;
        refresh.request(now, RefreshReason::Startup, cfg.seeds.len(), &mut rng);
        let mut client = Self {
            rng,
            topology: None,
            epoch: 0,
            patched: Vec::new(),
            refresh,
            refresh_conn: None,
            refresh_cursor: 0,
            last_refresh_error: None,
            seed_refusals: Vec::new(),
            conns: Arena::default(),
            nodes: HashMap::default(),
            down: HashMap::new(),
            parents: Arena::default(),
            subs: Arena::default(),
            waiting_topology: VecDeque::new(),
            timers: Timers::default(),
            outputs: VecDeque::new(),
            dirty: Vec::new(),
            stats: Stats::default(),
            node_stats: node_stats::NodeTable::default(),
            topology_fetched: None,
            closed: false,
            cfg,
        };
        // A random start (the seeds in turn from a random one; then the primaries from a random
        // one), so that a fleet's clients do not ask the same node in step (one draw, as before).
        client.refresh_cursor = client.rng.next_u64() as usize;
        client.maybe_start_refresh(now);
        Ok(client)
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The current topology, once one is known.
    #[must_use]
    pub const fn topology(&self) -> Option<&Topology> {
        self.topology.as_ref()
    }

    /// Counters since the client was created.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.outstanding = self.parents.len() as u64;
        s.connections = self.conns.len() as u64;
        s
    }

    /// When the topology in use was fetched: the instant of the last successful refresh (a
    /// `MOVED` that patched the map since does not count); `None` before the first.
    #[must_use]
    pub const fn topology_fetched_at(&self) -> Option<Instant> {
        self.topology_fetched
    }

    /// Calls `f` with the counters of every node that changed since the last call (each node
    /// once), `pending` as it is now; costs nothing when none changed. An adapter that exports
    /// metrics calls it once per turn of its loop, before it delivers completions, so what a
    /// caller observes after its request returned is counted.
    pub fn changed_nodes(&mut self, f: impl FnMut(NodeId, &NodeAddr, &NodeStats)) {
        let (nodes, conns) = (&self.nodes, &self.conns);
        self.node_stats.drain_changed(|addr| pending_on(nodes, conns, addr), f);
    }

    /// Every node the client has connected to, with its counters.
    #[must_use]
    pub fn node_stats(&self) -> Vec<(NodeId, NodeAddr, NodeStats)> {
        self.node_stats.all(|addr| pending_on(&self.nodes, &self.conns, addr))
    }

    /// The address of a node (as [`Output::Completed`] or [`Client::changed_nodes`] name it).
    #[must_use]
    pub fn node_addr(&self, id: NodeId) -> Option<&NodeAddr> {
        self.node_stats.addr(id)
    }

    /// Submits a request; its result comes later as [`Output::Completed`].
    ///
    /// # Errors
    /// A request refused before anything was sent (empty, malformed, cross-slot, overloaded,
    /// closed).
    pub fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, SubmitError> {
        if self.closed {
            return Err(SubmitError::Closed);
        }
        self.submit_prepared(now, request.prepare()?)
    }

    /// Submits a request planned beforehand by [`Request::prepare`] (same as
    /// [`Client::submit`], less the planning).
    ///
    /// # Errors
    /// [`SubmitError::Closed`] after [`Client::close`]; [`SubmitError::Overloaded`] when
    /// `max_outstanding` requests are already in flight.
    pub fn submit_prepared(&mut self, now: Instant, prepared: Prepared) -> Result<RequestId, SubmitError> {
        if self.closed {
            return Err(SubmitError::Closed);
        }
        if self.parents.len() >= self.cfg.max_outstanding {
            return Err(SubmitError::Overloaded { limit: self.cfg.max_outstanding });
        }
        let timeout = prepared.timeout.unwrap_or(self.cfg.request_timeout);
        let deadline = now + timeout;
        let plan = prepared.plan;
        let pending = plan.subs.len();
        let parent = self.parents.insert(Parent {
            deadline,
            pending,
            shape: plan.shape,
            results: (0..pending).map(|_| None).collect(),
            subs: Vec::with_capacity(pending),
            pinned: Vec::new(),
            node: None,
        });
        self.timers.push(deadline, Timer::Deadline(parent));
        for (index, planned) in plan.subs.into_iter().enumerate() {
            let held = planned.cmd.follows().is_some();
            let sid = self.subs.insert(Sub {
                parent,
                index,
                cmd: planned.cmd,
                route: planned.route,
                read_only: planned.read_only,
                idempotency: planned.idempotency,
                attempts: 0,
                budget: Budget::new(deadline),
                ask: None,
                on_conn: None,
                state: if held { SubState::Held } else { SubState::Idle },
                last_error: None,
            });
            if let Some(p) = self.parents.get_mut(parent) {
                p.subs.push(sid);
            }
            if !held {
                self.dispatch(now, sid);
            }
        }
        self.stats.requests += 1;
        self.maybe_start_refresh(now);
        Ok(RequestId(parent.to_u64()))
    }

    /// Feeds one event in.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Timeout => self.on_timeout(now),
            Input::Connected(c) => self.on_connected(c.id()),
            Input::ConnectFailed(c, e) => {
                self.stats.connect_failures += 1;
                self.on_conn_lost(now, c.id(), &e, None);
            }
            Input::Received(c, data) => self.on_received(now, c.id(), data),
            Input::Disconnected(c, e) => self.on_conn_lost(now, c.id(), &e, None),
        }
        self.maybe_start_refresh(now);
    }

    /// The next thing to do. Drain until [`Output::Wait`] after every mutation.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.outputs.pop_front() {
            if let Output::Completed { id, .. } = &o {
                // The adapter has the completion: the request's index may name another now.
                self.parents.release(Id::from_u64(id.0));
            }
            return o;
        }
        while let Some(cid) = self.dirty.pop() {
            if let Some(c) = self.conns.get_mut(cid) {
                c.dirty = false;
                if !c.write_buf.is_empty() {
                    return Output::Transmit {
                        conn: ConnId(cid.to_u64()),
                        data: c.write_buf.split().freeze(),
                    };
                }
            }
        }
        Output::Wait(self.next_deadline())
    }

    /// The earliest instant at which a timer is due; `None` once the client is closed (it has
    /// nothing left to do, and a pending refresh it will never start must not wake anyone).
    #[must_use]
    pub fn next_deadline(&mut self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut timers = std::mem::take(&mut self.timers);
        let timer = timers.peek_valid(|t| self.timer_is_live(t));
        self.timers = timers;
        match (timer, self.refresh.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fails every outstanding request with [`RequestError::Closed`] and closes every connection.
    pub fn close(&mut self) {
        self.closed = true;
        for pid in self.parents.ids() {
            self.fail_parent(pid, &RequestError::Closed);
        }
        for cid in self.conns.ids() {
            self.conns.remove(cid);
            self.outputs.push_back(Output::Close { conn: ConnId(cid.to_u64()) });
        }
        self.nodes.clear();
    }

    /// Asks for a topology refresh (subject to the refresh policy's pacing).
    pub fn request_refresh(&mut self, now: Instant, reason: RefreshReason) {
        let n = self.topology.as_ref().map_or(self.cfg.seeds.len(), |t| t.node_count());
        self.refresh.request(now, reason, n, &mut self.rng);
        self.maybe_start_refresh(now);
    }

    fn on_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Deadline(pid) => {
                    if self.parents.get(pid).is_some_and(|p| p.deadline <= now) {
                        self.expire_parent(pid);
                    }
                }
                Timer::Retry(sid) => {
                    if self.subs.get(sid).is_some_and(|s| s.state == SubState::WaitingRetry) {
                        self.dispatch(now, sid);
                    }
                }
                Timer::Connect(cid, _) => {
                    if self.conns.get(cid).is_some_and(|c| c.state != conn::ConnState::Ready) {
                        self.stats.connect_failures += 1;
                        let e =
                            ConnError::new(ConnErrorKind::ConnectTimeout, "connect and handshake timed out");
                        self.on_conn_lost(now, cid, &e, None);
                        self.outputs.push_back(Output::Close { conn: ConnId(cid.to_u64()) });
                    }
                }
                Timer::Refresh(cid, at) => {
                    if self.refresh_conn == Some((cid, at)) {
                        self.refresh_failed(now, "the topology query timed out");
                        self.arm_stall_check(cid, now);
                    }
                }
                Timer::Stall(cid) => self.check_stall(now, cid),
            }
        }
    }

    fn timer_is_live(&self, t: &Timer) -> bool {
        match *t {
            Timer::Deadline(pid) => self.parents.get(pid).is_some(),
            Timer::Retry(sid) => self.subs.get(sid).is_some_and(|s| s.state == SubState::WaitingRetry),
            Timer::Connect(cid, _) => self.conns.get(cid).is_some_and(|c| c.state != conn::ConnState::Ready),
            Timer::Refresh(cid, at) => self.refresh_conn == Some((cid, at)),
            Timer::Stall(cid) => self.conns.get(cid).is_some(),
        }
    }
}

/// Commands written or queued on `addr`'s connections and not answered yet.
fn pending_on(nodes: &HashMap<NodeAddr, NodeConns, FixedState>, conns: &Arena<Conn>, addr: &NodeAddr) -> u64 {
    nodes.get(addr).map_or(0, |n| {
        n.conns.iter().chain(n.blocking.iter()).filter_map(|c| conns.get(*c)).map(|c| c.load() as u64).sum()
    })
}
