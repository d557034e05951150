//! The simulated network and clock: the client state machine on one side, the
//! [`SimCluster`] on the other, events ordered by virtual time.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use slotcache_core::client::{
    Client, ClientConfig, Cmd, ConnError, ConnErrorKind, ConnId, Event, Input, Output, Reply, Request,
    RequestError, RequestId,
};
use slotcache_core::resp::{Limits, Protocol, decode, encode_value};
use slotcache_core::{NodeAddr, Rng, Value};

use super::cluster::{Session, SimCluster};

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
}

#[derive(Debug)]
struct SimConn {
    node: NodeAddr,
    inbuf: BytesMut,
    session: Session,
    held: Vec<Bytes>,
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
    conns: HashMap<ConnId, SimConn>,
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
}

impl Sim {
    /// A simulation of `cluster` with a client seeded by node 0 (and `cfg`'s other settings).
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the one real instant, as the epoch of virtual time
    pub fn new(cluster: SimCluster, mut cfg: ClientConfig, seed: u64) -> Self {
        let start = Instant::now();
        if cfg.seeds.is_empty() {
            cfg.seeds = vec![cluster.primaries()[0].clone()];
        }
        cfg.rng_seed = seed;
        let client = Client::new(cfg, start).expect("valid config");
        let mut sim = Self {
            client,
            cluster,
            now: start,
            start,
            queue: BTreeMap::new(),
            seq: 0,
            conns: HashMap::new(),
            client_wait: None,
            completed: HashMap::new(),
            events: Vec::new(),
            connects: BTreeMap::new(),
            rng: Rng::new(seed ^ 0xABCD),
            latency: Duration::from_micros(100),
            chunking: Chunking::Whole,
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

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn drain(&mut self) {
        loop {
            match self.client.poll_output() {
                Output::Connect { conn, addr } => {
                    *self.connects.entry(addr.clone()).or_insert(0) += 1;
                    let at = self.now + self.latency;
                    let up = self.cluster.nodes.get(&addr).is_some_and(|n| n.up);
                    if up {
                        self.conns.insert(
                            conn,
                            SimConn {
                                node: addr,
                                inbuf: BytesMut::new(),
                                session: Session::default(),
                                held: Vec::new(),
                            },
                        );
                        self.schedule(at, Ev::Connected(conn));
                    } else {
                        let e = ConnError::new(ConnErrorKind::Refused, "connection refused");
                        self.schedule(at, Ev::ConnectFailed(conn, e));
                    }
                }
                Output::Transmit { conn, data } => {
                    let at = self.now + self.latency;
                    self.schedule(at, Ev::ToServer(conn, data));
                }
                Output::Close { conn } => {
                    self.conns.remove(&conn);
                }
                Output::Completed { id, result } => {
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

    /// Advances to the next event; `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let next_ev = self.queue.keys().next().map(|k| k.0);
        let at = match (next_ev, self.client_wait) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return false,
            },
        };
        self.now = self.now.max(at);
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
                if self.conns.contains_key(&c) {
                    self.client.handle_input(now, Input::Received(c, &b));
                }
            }
            Ev::Disconnected(c, e) => self.client.handle_input(now, Input::Disconnected(c, e)),
            Ev::ToServer(c, b) => self.server_receive(c, b),
        }
    }

    fn server_receive(&mut self, c: ConnId, data: Bytes) {
        let Some(conn) = self.conns.get_mut(&c) else { return };
        let node = conn.node.clone();
        let (up, paused) = self.cluster.nodes.get(&node).map_or((false, false), |n| (n.up, n.paused));
        if !up {
            return;
        }
        if paused {
            conn.held.push(data);
            return;
        }
        conn.inbuf.extend_from_slice(&data);
        let mut out = BytesMut::new();
        loop {
            let Some(conn) = self.conns.get_mut(&c) else { return };
            let frame = match decode(&mut conn.inbuf, Protocol::Resp2, &Limits::default()) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => panic!("the client sent bad RESP: {e}"),
            };
            let Value::Array(items) = frame else { panic!("a request must be an array") };
            let args: Vec<Bytes> = items.into_iter().map(|v| v.as_bytes().cloned().expect("bulk")).collect();
            let mut session = std::mem::take(&mut conn.session);
            let reply = self.cluster.execute(&node, &args, &mut session);
            let proto = if session.resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
            encode_value(&mut out, &reply, proto).expect("encodable reply");
            if let Some(conn) = self.conns.get_mut(&c) {
                conn.session = session;
            }
        }
        if out.is_empty() {
            return;
        }
        let at = self.now + self.latency;
        let out = out.freeze();
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

    /// Runs until `done` holds or `limit` of virtual time passes; `true` when `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        for _ in 0..10_000_000 {
            if done(self) {
                return true;
            }
            let next = self.queue.keys().next().map(|k| k.0).into_iter().chain(self.client_wait).min();
            if next.is_none_or(|t| t > end) || !self.step() {
                self.now = self.now.max(end);
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

    /// Stops a node: its connections drop and new ones are refused.
    pub fn kill(&mut self, node: &NodeAddr) {
        if let Some(n) = self.cluster.nodes.get_mut(node) {
            n.up = false;
        }
        let victims: Vec<ConnId> =
            self.conns.iter().filter(|(_, c)| &c.node == node).map(|(id, _)| *id).collect();
        for c in victims {
            self.conns.remove(&c);
            let at = self.now + self.latency;
            self.schedule(at, Ev::Disconnected(c, ConnError::new(ConnErrorKind::Closed, "connection reset")));
        }
    }

    /// Drops every connection to a node without stopping it (a network blip).
    pub fn drop_connections(&mut self, node: &NodeAddr) {
        let victims: Vec<ConnId> =
            self.conns.iter().filter(|(_, c)| &c.node == node).map(|(id, _)| *id).collect();
        for c in victims {
            self.conns.remove(&c);
            self.schedule(
                self.now,
                Ev::Disconnected(c, ConnError::new(ConnErrorKind::Closed, "connection reset")),
            );
        }
    }

    /// Freezes a node (SIGSTOP): bytes are held until [`Sim::resume`].
    pub fn pause(&mut self, node: &NodeAddr) {
        if let Some(n) = self.cluster.nodes.get_mut(node) {
            n.paused = true;
        }
    }

    /// Thaws a node: held bytes are processed now.
    pub fn resume(&mut self, node: &NodeAddr) {
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
