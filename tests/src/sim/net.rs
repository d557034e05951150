//! The simulated network and clock: the client state machine on one side, the
//! [`SimCluster`] on the other, events ordered by virtual time.
//!
//! Time only moves in [`Sim::step`] (and the `run_*`/`wait`/`call` helpers built on it): to the
//! next network event, replication event, `WAIT` timeout or client timer. Each connection
//! delivers bytes in order in each direction (a slower path never overtakes a faster one sent
//! before it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use slotcache_core::client::{
    Client, ClientConfig, Cmd, ConnError, ConnErrorKind, ConnId, Event, Input, Output, Reply, Request,
    RequestError, RequestId,
};
use slotcache_core::resp::{Limits, Protocol, decode, encode_value};
use slotcache_core::{NodeAddr, Rng, Value};

use super::cluster::ClusterEv;
use super::cluster::{Outcome, Session, SimCluster};
use super::trace::{Trace, TraceKind, show_args, show_value};

/// How reply bytes are cut into reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// One read per reply batch.
    Whole,
    /// One read per byte: every frame is split at every possible point.
    EveryByte,
    /// Random cut points (from the simulation's seed).
    Random,
}

#[derive(Debug)]
enum Ev {
    Connected(ConnId),
    ConnectFailed(ConnId, ConnError),
    Received(ConnId, Bytes),
    Disconnected(ConnId, ConnError),
    ToServer(ConnId, Bytes),
    Cluster(ClusterEv),
    WaitTimeout(ConnId, u64),
}

#[derive(Debug)]
struct Blocked {
    id: u64,
    replicas: usize,
}

#[derive(Debug)]
struct SimConn {
    node: NodeAddr,
    inbuf: BytesMut,
    session: Session,
    held: Vec<Bytes>,
    blocked: Option<Blocked>,
    half_open: bool,
    to_server_at: Instant,
    to_client_at: Instant,
}

/// A client and a simulated cluster under one virtual clock.
#[derive(Debug)]
pub struct Sim {
    /// The client under test.
    pub client: Client,
    /// The simulated cluster.
    pub cluster: SimCluster,
    /// Virtual now.
    pub now: Instant,
    start: Instant,
    queue: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
    conns: BTreeMap<ConnId, SimConn>,
    client_wait: Option<Instant>,
    /// Completed requests.
    pub completed: HashMap<RequestId, Result<Reply, RequestError>>,
    /// Events the client emitted.
    pub events: Vec<Event>,
    /// Connections the client asked for, by node.
    pub connects: BTreeMap<NodeAddr, u64>,
    rng: Rng,
    /// One-way network latency.
    pub latency: Duration,
    /// How replies are cut.
    pub chunking: Chunking,
    /// Extra one-way latency per node ([`Sim::slow_node`]).
    pub node_latency: BTreeMap<NodeAddr, Duration>,
    /// Nodes that accept connections and bytes but never answer ([`Sim::silence`]).
    pub silent: BTreeSet<NodeAddr>,
    /// Nodes whose connection attempts are never answered ([`Sim::drop_connects`]).
    pub connect_blackhole: BTreeSet<NodeAddr>,
    trace: Option<Trace>,
}

impl Sim {
    /// A simulation of `cluster` with a client seeded by node 0 (and `cfg`'s other settings).
    /// The seed fixes the client's jitter, reply chunking, replication jitter and eviction.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the one real instant, as the epoch of virtual time
    pub fn new(mut cluster: SimCluster, mut cfg: ClientConfig, seed: u64) -> Self {
        let start = Instant::now();
        if cfg.seeds.is_empty() {
            cfg.seeds = vec![cluster.primaries()[0].clone()];
        }
        cfg.rng_seed = seed;
        cluster.reseed(seed ^ 0x5151_5151);
        let client = Client::new(cfg, start).expect("valid config");
        let mut sim = Self {
            client,
            cluster,
            now: start,
            start,
            queue: BTreeMap::new(),
            seq: 0,
            conns: BTreeMap::new(),
            client_wait: None,
            completed: HashMap::new(),
            events: Vec::new(),
            connects: BTreeMap::new(),
            rng: Rng::new(seed ^ 0xABCD),
            latency: Duration::from_micros(100),
            chunking: Chunking::Whole,
            node_latency: BTreeMap::new(),
            silent: BTreeSet::new(),
            connect_blackhole: BTreeSet::new(),
            trace: None,
        };
        sim.drain();
        sim
    }

    /// A default client configuration for simulations (seeds filled in by [`Sim::new`]).
    #[must_use]
    pub fn config() -> ClientConfig {
        ClientConfig::new(Vec::new())
    }

    /// Virtual time since the start.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    // ---- trace -------------------------------------------------------------------------------

    /// Starts recording a trace of the last `limit` events (sends, replies, faults, replication).
    pub fn enable_trace(&mut self, limit: usize) {
        self.trace = Some(Trace::new(limit));
    }

    /// The trace, if enabled.
    #[must_use]
    pub const fn trace(&self) -> Option<&Trace> {
        self.trace.as_ref()
    }

    /// The trace as text (empty when not enabled): print it when a seed fails.
    #[must_use]
    pub fn trace_dump(&self) -> String {
        self.trace.as_ref().map(Trace::render).unwrap_or_default()
    }

    /// Adds a line of the test's own to the trace.
    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.log(TraceKind::Note, || text);
    }

    fn log(&mut self, kind: TraceKind, text: impl FnOnce() -> String) {
        let at = self.elapsed();
        if let Some(t) = &mut self.trace {
            t.push(at, kind, text());
        }
    }

    // ---- event loop --------------------------------------------------------------------------

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn lat(&self, node: &NodeAddr) -> Duration {
        self.latency + self.node_latency.get(node).copied().unwrap_or_default()
    }

    /// Schedules what the cluster asked for (replication).
    fn pump(&mut self) {
        for (delay, ev) in self.cluster.take_outbox() {
            let at = self.now + delay;
            self.schedule(at, Ev::Cluster(ev));
        }
    }

    fn set_now(&mut self, t: Instant) {
        self.now = self.now.max(t);
        self.cluster.set_clock(self.now - self.start);
        self.pump();
    }

    fn drain(&mut self) {
        loop {
            match self.client.poll_output() {
                Output::Connect { conn, addr } => {
                    *self.connects.entry(addr.clone()).or_insert(0) += 1;
                    let at = self.now + self.lat(&addr);
                    let up = self.cluster.nodes.get(&addr).is_some_and(|n| n.up);
                    if self.connect_blackhole.contains(&addr) {
                        self.log(TraceKind::Conn, || {
                            format!("{conn:?} -> {addr}: connect dropped (blackhole)")
                        });
                    } else if up {
                        self.log(TraceKind::Conn, || format!("{conn:?} -> {addr}: connected"));
                        self.conns.insert(
                            conn,
                            SimConn {
                                node: addr,
                                inbuf: BytesMut::new(),
                                session: Session::default(),
                                held: Vec::new(),
                                blocked: None,
                                half_open: false,
                                to_server_at: self.now,
                                to_client_at: self.now,
                            },
                        );
                        self.schedule(at, Ev::Connected(conn));
                    } else {
                        self.log(TraceKind::Conn, || format!("{conn:?} -> {addr}: refused"));
                        let e = ConnError::new(ConnErrorKind::Refused, "connection refused");
                        self.schedule(at, Ev::ConnectFailed(conn, e));
                    }
                }
                Output::Transmit { conn, data } => {
                    let at = match self.conns.get(&conn).map(|c| c.node.clone()) {
                        Some(node) => {
                            let at = (self.now + self.lat(&node)).max(self.conns[&conn].to_server_at);
                            if let Some(c) = self.conns.get_mut(&conn) {
                                c.to_server_at = at;
                            }
                            at
                        }
                        None => self.now + self.latency,
                    };
                    self.schedule(at, Ev::ToServer(conn, data));
                }
                Output::Close { conn } => {
                    if let Some(c) = self.conns.remove(&conn) {
                        let node = c.node;
                        self.log(TraceKind::Conn, || format!("{conn:?} -> {node}: closed by the client"));
                    }
                }
                Output::Completed { id, result, .. } => {
                    self.completed.insert(id, result);
                }
                Output::Event(e) => self.events.push(e),
                Output::Wait(t) => {
                    self.client_wait = t;
                    return;
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
    }

    fn next_at(&mut self) -> Option<Instant> {
        self.pump();
        self.queue.keys().next().map(|k| k.0).into_iter().chain(self.client_wait).min()
    }

    /// Advances to the next event; `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let Some(at) = self.next_at() else { return false };
        let next_ev = self.queue.keys().next().map(|k| k.0);
        self.set_now(at);
        if next_ev == Some(at) {
            let key = *self.queue.keys().next().expect("peeked");
            let ev = self.queue.remove(&key).expect("present");
            self.deliver(ev);
        } else {
            self.client.handle_input(self.now, Input::Timeout);
        }
        self.drain();
        true
    }

    fn deliver(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Connected(c) => self.client.handle_input(now, Input::Connected(c)),
            Ev::ConnectFailed(c, e) => self.client.handle_input(now, Input::ConnectFailed(c, e)),
            Ev::Received(c, b) => {
                if self.conns.get(&c).is_some_and(|conn| !conn.half_open) {
                    self.client.handle_input(now, Input::Received(c, &b));
                }
            }
            Ev::Disconnected(c, e) => self.client.handle_input(now, Input::Disconnected(c, e)),
            Ev::ToServer(c, b) => self.server_receive(c, b),
            Ev::Cluster(ev) => {
                self.log(TraceKind::Repl, || format!("{ev:?}"));
                self.cluster.handle(&ev);
                self.pump();
                self.release_waits();
            }
            Ev::WaitTimeout(c, id) => {
                if self.conns.get(&c).and_then(|x| x.blocked.as_ref()).is_some_and(|b| b.id == id) {
                    self.unblock(c);
                }
            }
        }
    }

    fn server_receive(&mut self, c: ConnId, data: Bytes) {
        let Some(conn) = self.conns.get_mut(&c) else { return };
        let node = conn.node.clone();
        let (up, paused) = self.cluster.nodes.get(&node).map_or((false, false), |n| (n.up, n.paused));
        if !up || conn.half_open || self.silent.contains(&node) {
            let why = if !up {
                "node down"
            } else if conn.half_open {
                "half-open"
            } else {
                "silent node"
            };
            let n = data.len();
            self.log(TraceKind::Send, || format!("{c:?} {node} <- {n} bytes lost ({why})"));
            return;
        }
        if paused {
            conn.held.push(data);
            return;
        }
        conn.inbuf.extend_from_slice(&data);
        self.process(c);
    }

    /// Runs the complete commands buffered on a connection, until one blocks (`WAIT`).
    fn process(&mut self, c: ConnId) {
        let mut out = BytesMut::new();
        let Some(node) = self.conns.get(&c).map(|x| x.node.clone()) else { return };
        loop {
            let Some(conn) = self.conns.get_mut(&c) else { return };
            if conn.blocked.is_some() {
                break;
            }
            let proto = if conn.session.resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
            let args = match decode(&mut conn.inbuf, Protocol::Resp2, &Limits::default()) {
                Ok(None) => break,
                Ok(Some(Value::Array(items))) if !items.is_empty() => {
                    let args: Option<Vec<Bytes>> = items.into_iter().map(|v| v.as_bytes().cloned()).collect();
                    args
                }
                Ok(Some(_)) => None,
                Err(_) => None,
            };
            let Some(args) = args else {
                // As Valkey: a protocol error is answered, then the connection is closed.
                let e = Value::Error(Bytes::from_static(
                    b"ERR Protocol error: expected an array of bulk strings",
                ));
                encode_value(&mut out, &e, proto).expect("encodable error");
                self.send_to_client(c, std::mem::take(&mut out).freeze());
                self.conns.remove(&c);
                let at = self.now + self.lat(&node) + Duration::from_nanos(1);
                self.schedule(
                    at,
                    Ev::Disconnected(c, ConnError::new(ConnErrorKind::Closed, "closed by server")),
                );
                return;
            };
            self.log(TraceKind::Send, || format!("{c:?} {node} <- {}", show_args(&args)));
            let Some(conn) = self.conns.get_mut(&c) else { return };
            let mut session = std::mem::take(&mut conn.session);
            let outcome = self.cluster.execute_outcome(&node, &args, &mut session);
            let proto = if session.resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
            let Some(conn) = self.conns.get_mut(&c) else { return };
            conn.session = session;
            match outcome {
                Outcome::Reply(reply) => {
                    self.log(TraceKind::Reply, || format!("{c:?} {node} -> {}", show_value(&reply)));
                    encode_value(&mut out, &reply, proto).expect("encodable reply");
                }
                Outcome::Wait { replicas, timeout } => {
                    self.seq += 1;
                    let id = self.seq;
                    conn.blocked = Some(Blocked { id, replicas });
                    let woff = conn.session.woff;
                    self.log(TraceKind::Repl, || {
                        format!("{c:?} {node} blocks in WAIT {replicas} (offset {woff}, timeout {timeout:?})")
                    });
                    if let Some(t) = timeout {
                        self.schedule(self.now + t, Ev::WaitTimeout(c, id));
                    }
                    break;
                }
            }
        }
        self.pump();
        self.send_to_client(c, out.freeze());
    }

    fn send_to_client(&mut self, c: ConnId, out: Bytes) {
        let Some(conn) = self.conns.get(&c) else { return };
        if out.is_empty() {
            return;
        }
        let at = (self.now + self.lat(&conn.node)).max(conn.to_client_at);
        if let Some(conn) = self.conns.get_mut(&c) {
            conn.to_client_at = at;
        }
        match self.chunking {
            Chunking::Whole => self.schedule(at, Ev::Received(c, out)),
            Chunking::EveryByte => {
                for i in 0..out.len() {
                    self.schedule(at, Ev::Received(c, out.slice(i..=i)));
                }
            }
            Chunking::Random => {
                let mut i = 0;
                while i < out.len() {
                    let n = 1 + self.rng.below((out.len() - i) as u64) as usize;
                    self.schedule(at, Ev::Received(c, out.slice(i..i + n)));
                    i += n;
                }
            }
        }
    }

    /// Releases the `WAIT`s whose replicas have now acknowledged.
    fn release_waits(&mut self) {
        let ready: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, x)| {
                x.blocked.as_ref().is_some_and(|b| self.cluster.acked(&x.node, x.session.woff) >= b.replicas)
            })
            .map(|(c, _)| *c)
            .collect();
        for c in ready {
            self.unblock(c);
        }
    }

    /// Answers a blocked `WAIT` with the current count and resumes the connection's pipeline.
    fn unblock(&mut self, c: ConnId) {
        let Some(conn) = self.conns.get_mut(&c) else { return };
        conn.blocked = None;
        let n = self.cluster.acked(&conn.node, conn.session.woff);
        let proto = if conn.session.resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
        let node = conn.node.clone();
        self.log(TraceKind::Reply, || format!("{c:?} {node} -> WAIT released: (integer) {n}"));
        let mut out = BytesMut::new();
        encode_value(&mut out, &Value::Int(n as i64), proto).expect("encodable");
        self.send_to_client(c, out.freeze());
        let paused = self.cluster.nodes.get(&node).is_some_and(|n| n.paused);
        if !paused {
            self.process(c);
        }
    }

    // ---- driving -----------------------------------------------------------------------------

    /// Runs until `done` holds or `limit` of virtual time passes; `true` when `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        for _ in 0..10_000_000 {
            if done(self) {
                return true;
            }
            let next = self.next_at();
            if next.is_none_or(|t| t > end) || !self.step() {
                self.set_now(end);
                return done(self);
            }
        }
        panic!("simulation did not settle within 10M steps (livelock?)");
    }

    /// Runs `limit` of virtual time.
    pub fn run_for(&mut self, limit: Duration) {
        self.run_until(limit, |_| false);
    }

    /// Submits a request now.
    pub fn submit(&mut self, req: Request) -> RequestId {
        let id = self.client.submit(self.now, req).expect("submit");
        self.drain();
        id
    }

    /// Waits (virtual time, up to 10 s) for a request's result.
    pub fn wait(&mut self, id: RequestId) -> Result<Reply, RequestError> {
        self.run_until(Duration::from_secs(10), |s| s.completed.contains_key(&id));
        self.completed.remove(&id).expect("request completed within 10 s of virtual time")
    }

    /// Sends one command and waits for its reply.
    pub fn call(&mut self, cmd: Cmd) -> Result<Value, RequestError> {
        let id = self.submit(Request::command(cmd));
        self.wait(id).map(|r| r.into_value().expect("single value"))
    }

    /// Sends one command to one node and waits for its reply.
    pub fn call_node(&mut self, node: &NodeAddr, cmd: Cmd) -> Result<Value, RequestError> {
        let id = self.submit(Request::node(node.clone(), cmd));
        self.wait(id).map(|r| r.into_value().expect("single value"))
    }

    // ---- faults ------------------------------------------------------------------------------

    fn close_all(&mut self, node: &NodeAddr, at: Instant) {
        let victims: Vec<ConnId> =
            self.conns.iter().filter(|(_, c)| &c.node == node).map(|(id, _)| *id).collect();
        for c in victims {
            self.conns.remove(&c);
            self.schedule(at, Ev::Disconnected(c, ConnError::new(ConnErrorKind::Closed, "connection reset")));
        }
    }

    /// Stops a node: its connections drop and new ones are refused.
    pub fn kill(&mut self, node: &NodeAddr) {
        self.log(TraceKind::Fault, || format!("kill {node}"));
        if let Some(n) = self.cluster.nodes.get_mut(node) {
            n.up = false;
        }
        let at = self.now + self.lat(node);
        self.close_all(node, at);
    }

    /// Kills a primary and promotes its most up-to-date live replica (what the cluster's
    /// election does), which keeps exactly what it had applied: the unreplicated tail is lost.
    /// Returns the promoted replica, `None` if none is up.
    pub fn crash_primary(&mut self, primary: &NodeAddr) -> Option<NodeAddr> {
        self.kill(primary);
        let r = self.cluster.best_replica(primary)?;
        let (had, of) = (self.cluster.repl_offset(&r), self.cluster.repl_offset(primary));
        self.log(TraceKind::Fault, || format!("promote {r} (applied {had} of {of})"));
        self.promote(&r);
        Some(r)
    }

    /// Promotes `replica` now (the election once its primary has been unreachable for the node
    /// timeout; see [`SimCluster::failover`]): the slot map changes and replication follows.
    pub fn promote(&mut self, replica: &NodeAddr) {
        self.log(TraceKind::Fault, || format!("promoted {replica}"));
        self.cluster.failover(replica);
        self.pump();
    }

    /// Restarts a node (stopped or not): its connections drop, its script cache empties, and its
    /// data is kept (`keep_data`, persistence on) or lost (persistence off). A replica then
    /// resynchronises; a primary that lost its data comes back empty and its replicas follow it.
    pub fn restart(&mut self, node: &NodeAddr, keep_data: bool) {
        self.log(TraceKind::Fault, || format!("restart {node} (keep data: {keep_data})"));
        let at = self.now + self.lat(node);
        self.close_all(node, at);
        if let Some(n) = self.cluster.nodes.get_mut(node) {
            n.up = true;
            n.paused = false;
            n.script_cache.clear();
        }
        self.cluster.after_restart(node, keep_data);
        self.pump();
    }

    /// Drops every connection to a node without stopping it (a network blip).
    pub fn drop_connections(&mut self, node: &NodeAddr) {
        self.log(TraceKind::Fault, || format!("drop connections to {node}"));
        let now = self.now;
        self.close_all(node, now);
    }

    /// Makes every current connection to a node half-open: bytes sent are accepted and lost,
    /// nothing more is ever answered, and no close is seen. New connections work.
    pub fn half_open(&mut self, node: &NodeAddr) {
        self.log(TraceKind::Fault, || format!("half-open connections to {node}"));
        for c in self.conns.values_mut().filter(|c| &c.node == node) {
            c.half_open = true;
        }
    }

    /// A node that accepts connections and bytes but never answers (`on`), or answers again.
    /// Unlike [`Sim::pause`], what it received meanwhile is never processed.
    pub fn silence(&mut self, node: &NodeAddr, on: bool) {
        self.log(TraceKind::Fault, || format!("silence {node}: {on}"));
        if on {
            self.silent.insert(node.clone());
        } else {
            self.silent.remove(node);
        }
    }

    /// Connection attempts to a node are never answered (`on`): the client's connect timeout
    /// decides. Existing connections are unaffected.
    pub fn drop_connects(&mut self, node: &NodeAddr, on: bool) {
        self.log(TraceKind::Fault, || format!("drop connects to {node}: {on}"));
        if on {
            self.connect_blackhole.insert(node.clone());
        } else {
            self.connect_blackhole.remove(node);
        }
    }

    /// Adds `extra` one-way latency to and from a node (`Duration::ZERO` to heal).
    pub fn slow_node(&mut self, node: &NodeAddr, extra: Duration) {
        self.log(TraceKind::Fault, || format!("slow {node} by {extra:?}"));
        self.node_latency.insert(node.clone(), extra);
    }

    /// Freezes a node (SIGSTOP): bytes are held until [`Sim::resume`].
    pub fn pause(&mut self, node: &NodeAddr) {
        self.log(TraceKind::Fault, || format!("pause {node}"));
        if let Some(n) = self.cluster.nodes.get_mut(node) {
            n.paused = true;
        }
    }

    /// Thaws a node: held bytes are processed now.
    pub fn resume(&mut self, node: &NodeAddr) {
        self.log(TraceKind::Fault, || format!("resume {node}"));
        if let Some(n) = self.cluster.nodes.get_mut(node) {
            n.paused = false;
        }
        let held: Vec<(ConnId, Vec<Bytes>)> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| &c.node == node)
            .map(|(id, c)| (*id, std::mem::take(&mut c.held)))
            .collect();
        for (c, chunks) in held {
            for b in chunks {
                self.server_receive(c, b);
            }
        }
    }
}
