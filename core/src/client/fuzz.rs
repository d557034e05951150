//! Fuzz target body for the client state machine (re-exported by `crate::fuzzing`; also run by
//! the unit tests).
//!
//! The input is an [`arbitrary`]-decoded [`Setup`] followed by [`Op`]s, played against a
//! [`Client`] by a harness that acts as a well-behaved adapter and a loosely-behaved cluster of
//! six nodes (three shards, `127.0.0.1:7000..=7005`). The adapter side is faithful: it reports
//! events only for connections the client asked for (plus the late events a real adapter can
//! race into: bytes or a connect after the client's `Close`), never lets time go backwards, and
//! wakes the client at every instant `Wait` names (or, for [`Op::Late`], once and late, as a
//! busy adapter does). The cluster side answers the oldest command on a connection with
//! anything from a small menu: the right reply, the wrong shape, `MOVED` and `ASK` to known,
//! new or the same nodes, `TRYAGAIN`, `CLUSTERDOWN`, garbage, half a reply and a dropped
//! connection; reply bytes are split at arbitrary points.
//!
//! Checked after every step, with `poll_output` drained until `Wait`: nothing panics; a request
//! completes at most once and only if it was submitted; no request outlives its deadline;
//! `Connect` names a fresh id and a usable address, `Transmit` only open connections, `Close`
//! only connections the client still had; `Transmit` bytes are whole RESP commands; `Wait` is
//! never in the past and never `None` while requests are outstanding, and the client never asks
//! to be woken at the same instant over and over; the stats count exactly the requests and
//! connections the harness sees. At the end, time runs past every deadline with no other input:
//! every submitted request must have completed, and nothing is outstanding.

use core::time::Duration;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};

use super::{
    Client, ClientConfig, Cmd, ConnError, ConnErrorKind, ConnId, Event, Input, Output, Password, ReadFrom,
    Request, RequestId,
};
use crate::resp::{Limits, Protocol, decode, encode_value};
use crate::topology::{Health, Node, Role, Shard, SlotRange, Topology};
use crate::{NodeAddr, Slot, Value, key_slot};

/// Most operations one input plays (bounds the time one input takes).
const MAX_OPS: usize = 256;

/// The keys requests use: spread over the three shards, two sharing a hash tag.
const KEYS: [&str; 6] = ["foo", "bar", "baz", "{t}1", "{t}2", "user:1000"];

/// The client's configuration, chosen by the input's first bytes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Setup {
    /// `HELLO 3` (else RESP2, no `HELLO`).
    pub(crate) resp3: bool,
    /// A password (`AUTH`, or `HELLO ... AUTH`).
    pub(crate) password: bool,
    /// A client name (`CLIENT SETNAME`, or `HELLO ... SETNAME`).
    pub(crate) name: bool,
    /// Reads prefer replicas (`READONLY` on every connection).
    pub(crate) replicas: bool,
    /// Two connections per node.
    pub(crate) two_conns: bool,
    /// Tiny queue and outstanding bounds, to reach `QueueFull` and `Overloaded`.
    pub(crate) tight: bool,
    /// Seed of the client's generator.
    pub(crate) seed: u8,
}

/// One step.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Submit a request, with a timeout in milliseconds (modulo 10 s) or the default.
    Submit(Req, Option<u16>),
    /// On an open connection with commands to answer (picked by index), answer the oldest with
    /// the answer, and `n % 4` more with their natural replies, in one buffer cut at two points.
    Reply(u8, Answer, u8, [u8; 2]),
    /// `+OK` on an open connection, answering its oldest command if it has one (a reply nobody
    /// asked for otherwise).
    Unsolicited(u8),
    /// A RESP3 push message (an invalidation) on an open connection.
    Push(u8),
    /// A dialling connection opened.
    Connected(u8),
    /// A dialling connection failed.
    ConnectFailed(u8),
    /// An open connection dropped.
    Disconnect(u8),
    /// A late event for a connection the client closed or lost (bytes, connected, dropped).
    Stale(u8, u8),
    /// Time passes (milliseconds), waking the client at every instant it asked for.
    Advance(u16),
    /// A spurious wake-up now.
    Wake,
    /// The caller asks for a topology refresh.
    Refresh,
    /// The caller closes the client (only when the byte is `0xC0`, so most inputs run long).
    Shutdown(u8),
    /// Time passes (milliseconds) and the client is woken once, late, at the end (a busy
    /// adapter oversleeping every instant `Wait` named on the way).
    Late(u16),
    /// On an open connection with commands to answer, the first `n` bytes of the answer to the
    /// oldest, then the server drops the connection.
    Partial(u8, Answer, u8),
}

/// A request over [`KEYS`] (indices taken modulo the key count).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Req {
    /// `GET k`.
    Get(u8),
    /// `SET k v`.
    Set(u8),
    /// `INCR k` (not idempotent).
    Incr(u8),
    /// `MGET` of `1 + n % 4` keys (split per slot).
    MGet([u8; 4], u8),
    /// `DEL` of `1 + n % 4` keys (split per slot).
    Del([u8; 4], u8),
    /// A pipeline of `1 + n % 4` commands.
    Pipeline([Simple; 4], u8),
    /// `PING` (any primary).
    Ping,
    /// `DBSIZE` (every primary, summed).
    DbSize,
    /// `PING` to one of the six nodes.
    NodePing(u8),
    /// An empty pipeline (refused at submit).
    Empty,
}

/// A pipeline element.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Simple {
    /// `GET k`.
    Get(u8),
    /// `SET k v`.
    Set(u8),
    /// `INCR k`.
    Incr(u8),
    /// `DEL k`.
    Del(u8),
}

/// How the cluster answers a command.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// What a healthy server would say (the fixed topology for `CLUSTER SHARDS`/`SLOTS`).
    Natural,
    /// `+OK`.
    Ok,
    /// A bulk string.
    Bulk,
    /// Nil.
    Nil,
    /// `:1`.
    Int,
    /// An array of `n % 5` bulk strings (often the wrong shape).
    Array(u8),
    /// `MOVED` for the command's slot (or this slot, taken as is: it may be out of range).
    Moved(Target, Option<u16>),
    /// `ASK`, likewise.
    Ask(Target, Option<u16>),
    /// `TRYAGAIN`.
    TryAgain,
    /// `CLUSTERDOWN`.
    ClusterDown,
    /// `LOADING`.
    Loading,
    /// `READONLY`.
    ReadOnly,
    /// `ERR`.
    Err,
    /// `NOAUTH` (fails a handshake).
    NoAuth,
    /// Bytes that are not RESP (most of the time).
    Garbage([u8; 4]),
    /// For a topology query, another topology (a failover, moved slots, a new node); for
    /// anything else, the natural reply.
    AltTopology,
}

/// Where a redirect points.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// One of the six nodes of the fixed topology.
    Known(u8),
    /// One of three nodes no topology lists.
    New(u8),
    /// An empty host (`:port`): the answering node's host, with one of the six ports.
    Empty(u8),
    /// The node that answered.
    Itself,
}

/// `client_ops`: plays the input against a [`Client`] and checks the invariants in the module
/// docs; panics when one breaks.
pub fn client_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else { return };
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    run(&setup, &ops);
}

/// Plays `ops` and runs the end-of-input checks.
pub(crate) fn run(setup: &Setup, ops: &[Op]) -> Harness {
    let mut h = Harness::new(setup, None);
    for op in ops {
        h.apply(op);
    }
    h.finish();
    h
}

/// A node's address: node `i` of the six (modulo six).
fn node(i: u8) -> NodeAddr {
    NodeAddr::new("127.0.0.1", 7000 + u16::from(i % 6))
}

/// Where a connection is, as the adapter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// `Connect` received, not yet reported.
    Dialing,
    /// Reported connected.
    Open,
    /// Closed by the client, or reported failed or dropped.
    Gone,
}

/// One connection, with the commands the client wrote and the server has not answered.
#[derive(Debug)]
struct Peer {
    addr: NodeAddr,
    state: State,
    /// Whether `HELLO 3` succeeded: the server now speaks RESP3.
    resp3: bool,
    unanswered: VecDeque<Vec<Bytes>>,
}

/// The adapter and the cluster around one client.
#[derive(Debug)]
pub(crate) struct Harness {
    client: Client,
    now: Instant,
    wait: Option<Instant>,
    peers: BTreeMap<ConnId, Peer>,
    /// Submitted and not completed, with their deadlines.
    outstanding: BTreeMap<RequestId, Instant>,
    /// Completed.
    done: HashSet<RequestId>,
    /// The latest deadline of any request.
    horizon: Instant,
    epoch: u64,
    /// The generated cluster (`client_topology`); `None`: the fixed three shards.
    cluster: Option<Cluster>,
    /// Every address a reply or the configuration named: the only ones the client may dial.
    named: HashSet<NodeAddr>,
    /// Counters, for tests that check a scenario went where it meant to.
    pub(crate) completions: usize,
    pub(crate) failures: usize,
    pub(crate) topology_changes: usize,
    pub(crate) transmits: usize,
}

impl Harness {
    fn new(setup: &Setup, cluster: Option<Cluster>) -> Self {
        // The one real instant: the origin of virtual time. Nothing below reads a clock.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut cfg = ClientConfig::new(vec![node(0), node(1)]);
        cfg.protocol = if setup.resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
        if setup.password {
            cfg.password = Some(Password::new("secret"));
        }
        if setup.name {
            cfg.client_name = Some("fuzz".into());
        }
        if setup.replicas {
            cfg.read_from = ReadFrom::PreferReplica;
        }
        cfg.connections_per_node = if setup.two_conns { 2 } else { 1 };
        if setup.tight {
            cfg.max_queued_per_node = 3;
            cfg.max_outstanding = 4;
        }
        cfg.rng_seed = u64::from(setup.seed);
        let client = Client::new(cfg, now).expect("the harness configuration is valid");
        let mut h = Self {
            client,
            now,
            wait: None,
            peers: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            done: HashSet::new(),
            horizon: now,
            epoch: 0,
            cluster,
            // The seeds, and every node of the fixed layouts (0 to 6).
            named: (0..7).map(|i| NodeAddr::new("127.0.0.1", 7000 + i)).collect(),
            completions: 0,
            failures: 0,
            topology_changes: 0,
            transmits: 0,
        };
        h.drain();
        h
    }

    /// The connection in `state` picked by `index` (modulo their number), if any.
    fn pick(&self, state: State, index: u8) -> Option<ConnId> {
        self.pick_where(index, |p| p.state == state)
    }

    /// The connection matching `f` picked by `index` (modulo their number), if any.
    fn pick_where(&self, index: u8, f: impl Fn(&Peer) -> bool) -> Option<ConnId> {
        let ids: Vec<ConnId> = self.peers.iter().filter(|(_, p)| f(p)).map(|(id, _)| *id).collect();
        ids.get(usize::from(index) % ids.len().max(1)).copied()
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::Submit(req, timeout) => self.submit(req, *timeout),
            Op::Reply(conn, answer, more, cuts) => {
                if let Some(id) =
                    self.pick_where(*conn, |p| p.state == State::Open && !p.unanswered.is_empty())
                {
                    let bytes = self.answer(id, answer, usize::from(*more % 4));
                    self.deliver(id, &bytes, *cuts);
                }
            }
            Op::Unsolicited(conn) => {
                if let Some(id) = self.pick(State::Open, *conn) {
                    let bytes = self.answer(id, &Answer::Ok, 0);
                    self.deliver(id, &bytes, [0, 0]);
                }
            }
            Op::Push(conn) => {
                if let Some(id) = self.pick(State::Open, *conn) {
                    self.client.handle_input(
                        now,
                        Input::Received(id, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nfoo\r\n"),
                    );
                }
            }
            Op::Connected(conn) => {
                if let Some(id) = self.pick(State::Dialing, *conn) {
                    self.set_state(id, State::Open);
                    self.client.handle_input(now, Input::Connected(id));
                }
            }
            Op::ConnectFailed(conn) => {
                if let Some(id) = self.pick(State::Dialing, *conn) {
                    self.set_state(id, State::Gone);
                    let e = ConnError::new(ConnErrorKind::Refused, "connection refused");
                    self.client.handle_input(now, Input::ConnectFailed(id, e));
                }
            }
            Op::Disconnect(conn) => {
                if let Some(id) = self.pick(State::Open, *conn) {
                    self.set_state(id, State::Gone);
                    let e = ConnError::new(ConnErrorKind::Closed, "connection reset by peer");
                    self.client.handle_input(now, Input::Disconnected(id, e));
                }
            }
            Op::Stale(conn, what) => {
                if let Some(id) = self.pick(State::Gone, *conn) {
                    match what % 3 {
                        0 => self.client.handle_input(now, Input::Received(id, b"+OK\r\n")),
                        1 => self.client.handle_input(now, Input::Connected(id)),
                        _ => {
                            let e = ConnError::new(ConnErrorKind::Io, "late error");
                            self.client.handle_input(now, Input::Disconnected(id, e));
                        }
                    }
                }
            }
            Op::Advance(ms) => {
                self.advance_to(now + Duration::from_millis(u64::from(*ms)));
                return;
            }
            Op::Wake => self.client.handle_input(now, Input::Timeout),
            Op::Refresh => self.client.request_refresh(now, crate::topology::RefreshReason::Manual),
            Op::Shutdown(confirm) => {
                if *confirm == 0xC0 {
                    self.client.close();
                }
            }
            Op::Late(ms) => {
                self.now += Duration::from_millis(u64::from(*ms));
                self.client.handle_input(self.now, Input::Timeout);
            }
            Op::Partial(conn, answer, keep) => {
                if let Some(id) =
                    self.pick_where(*conn, |p| p.state == State::Open && !p.unanswered.is_empty())
                {
                    let bytes = self.answer(id, answer, 0);
                    let keep = usize::from(*keep) % bytes.len().max(1);
                    self.deliver(id, bytes.get(..keep).unwrap_or_default(), [0, 0]);
                    if self.peers.get(&id).is_some_and(|p| p.state == State::Open) {
                        self.set_state(id, State::Gone);
                        let e = ConnError::new(ConnErrorKind::Closed, "connection closed mid-reply");
                        self.client.handle_input(self.now, Input::Disconnected(id, e));
                    }
                }
            }
        }
        self.drain();
    }

    fn set_state(&mut self, id: ConnId, state: State) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.state = state;
            if state == State::Gone {
                p.unanswered.clear();
            }
        }
    }

    fn submit(&mut self, req: &Req, timeout: Option<u16>) {
        let key = |k: &u8| KEYS[usize::from(*k) % KEYS.len()];
        let simple = |s: &Simple| match s {
            Simple::Get(k) => Cmd::new("GET").arg(key(k)),
            Simple::Set(k) => Cmd::new("SET").arg(key(k)).arg("v"),
            Simple::Incr(k) => Cmd::new("INCR").arg(key(k)),
            Simple::Del(k) => Cmd::new("DEL").arg(key(k)),
        };
        let multi = |name: &str, keys: &[u8; 4], n: u8| {
            keys.iter().take(1 + usize::from(n % 4)).fold(Cmd::new(name), |c, k| c.arg(key(k)))
        };
        let mut request = match req {
            Req::Get(k) => Request::command(simple(&Simple::Get(*k))),
            Req::Set(k) => Request::command(simple(&Simple::Set(*k))),
            Req::Incr(k) => Request::command(simple(&Simple::Incr(*k))),
            Req::MGet(keys, n) => Request::command(multi("MGET", keys, *n)),
            Req::Del(keys, n) => Request::command(multi("DEL", keys, *n)),
            Req::Pipeline(cmds, n) => {
                Request::pipeline(cmds.iter().take(1 + usize::from(n % 4)).map(simple).collect())
            }
            Req::Ping => Request::command(Cmd::new("PING")),
            Req::DbSize => Request::command(Cmd::new("DBSIZE")),
            Req::NodePing(i) => Request::node(node(*i), Cmd::new("PING")),
            Req::Empty => Request::pipeline(Vec::new()),
        };
        if let Some(ms) = timeout {
            request = request.with_timeout(Duration::from_millis(u64::from(ms % 10_000)));
        }
        let deadline = self.now + request.timeout.unwrap_or_else(|| self.client.config().request_timeout);
        if let Ok(id) = self.client.submit(self.now, request) {
            assert!(
                !self.done.contains(&id) && !self.outstanding.contains_key(&id),
                "request id {id:?} reused"
            );
            assert!(
                !self.outstanding.keys().any(|o| o.index() == id.index()),
                "request index {} reused before its completion was polled",
                id.index()
            );
            self.outstanding.insert(id, deadline);
            self.horizon = self.horizon.max(deadline);
        }
        self.drain();
    }

    /// The bytes answering the oldest unanswered command on `id` with `answer`, then `more`
    /// commands with their natural replies. A connection with nothing to answer gets an
    /// unsolicited reply.
    fn answer(&mut self, id: ConnId, answer: &Answer, more: usize) -> BytesMut {
        let Some(peer) = self.peers.get_mut(&id) else { return BytesMut::new() };
        let mut out = BytesMut::new();
        for i in 0..=more {
            let cmd = peer.unanswered.pop_front();
            if i > 0 && cmd.is_none() {
                break;
            }
            let cmd = cmd.unwrap_or_default();
            let answer = if i == 0 { answer } else { &Answer::Natural };
            if let Answer::Garbage(bytes) = answer {
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
                continue;
            }
            let value = reply(&cmd, answer, peer, self.cluster.as_ref(), &mut self.named);
            if is_hello(&cmd) && !matches!(value, Value::Error(_)) {
                peer.resp3 = true;
            }
            let protocol = if peer.resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
            encode_value(&mut out, &value, protocol).expect("the harness builds encodable replies");
        }
        out
    }

    /// Delivers `bytes` on `id`, cut at two points, draining after every read.
    fn deliver(&mut self, id: ConnId, bytes: &[u8], cuts: [u8; 2]) {
        let mut points: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut start = 0;
        for end in points.into_iter().chain([bytes.len()]) {
            if let Some(chunk) = bytes.get(start..end).filter(|c| !c.is_empty()) {
                self.client.handle_input(self.now, Input::Received(id, chunk));
                self.drain();
            }
            start = start.max(end);
        }
    }

    /// Moves time to `target`, waking the client at every instant it asks for on the way.
    fn advance_to(&mut self, target: Instant) {
        let mut same_instant = 0u32;
        while let Some(at) = self.wait.filter(|&at| at <= target) {
            same_instant = if at <= self.now { same_instant + 1 } else { 0 };
            if same_instant >= 64 {
                panic!("the client asks to be woken at {at:?} again and again (a spin): {:#?}", self.client);
            }
            self.now = self.now.max(at);
            self.client.handle_input(self.now, Input::Timeout);
            self.drain();
        }
        self.now = self.now.max(target);
        self.drain();
    }

    /// Drains `poll_output` until `Wait`, checking every output.
    fn drain(&mut self) {
        for _ in 0..1_000_000 {
            match self.client.poll_output() {
                Output::Connect { conn, addr } => {
                    assert!(!self.peers.contains_key(&conn), "Connect reuses {conn:?}");
                    assert!(
                        !addr.host().is_empty() && addr.port() != 0,
                        "Connect to an unusable address {addr}"
                    );
                    assert!(self.named.contains(&addr), "Connect to {addr}, which no reply named");
                    let peer =
                        Peer { addr, state: State::Dialing, resp3: false, unanswered: VecDeque::new() };
                    self.peers.insert(conn, peer);
                }
                Output::Transmit { conn, data } => {
                    self.transmits += 1;
                    let peer =
                        self.peers.get_mut(&conn).unwrap_or_else(|| panic!("Transmit on unknown {conn:?}"));
                    assert_eq!(peer.state, State::Open, "Transmit on {conn:?} to {}", peer.addr);
                    peer.unanswered.extend(commands(&data));
                }
                Output::Close { conn } => {
                    let peer =
                        self.peers.get_mut(&conn).unwrap_or_else(|| panic!("Close of unknown {conn:?}"));
                    assert_ne!(peer.state, State::Gone, "Close of {conn:?}, already closed or lost");
                    peer.state = State::Gone;
                    peer.unanswered.clear();
                }
                Output::Completed { id, result, .. } => {
                    self.failures += usize::from(result.is_err());
                    assert!(!self.done.contains(&id), "{id:?} completed twice");
                    assert!(self.outstanding.remove(&id).is_some(), "{id:?} completed but never submitted");
                    self.done.insert(id);
                    self.completions += 1;
                }
                Output::Event(Event::TopologyChanged { epoch, .. }) => {
                    assert!(epoch > self.epoch, "topology epoch went from {} to {epoch}", self.epoch);
                    self.epoch = epoch;
                    self.topology_changes += 1;
                }
                Output::Event(Event::Push { conn, .. }) => {
                    assert!(self.peers.contains_key(&conn), "push from unknown {conn:?}");
                }
                Output::Wait(at) => {
                    self.wait = at;
                    self.check_quiescent(at);
                    return;
                }
            }
        }
        panic!("poll_output never returned Wait");
    }

    /// The checks that hold whenever the client is waiting.
    fn check_quiescent(&self, at: Option<Instant>) {
        if let Some(at) = at {
            assert!(at >= self.now, "Wait({at:?}) is {:?} in the past", self.now - at);
        } else {
            assert!(
                self.outstanding.is_empty(),
                "Wait(None) with {} requests outstanding",
                self.outstanding.len()
            );
        }
        if let Some((id, deadline)) = self.outstanding.iter().find(|(_, d)| **d < self.now) {
            panic!("{id:?} outlived its deadline by {:?}", self.now - *deadline);
        }
        let stats = self.client.stats();
        assert_eq!(stats.outstanding, self.outstanding.len() as u64, "stats.outstanding");
        let live = self.peers.values().filter(|p| p.state != State::Gone).count();
        assert_eq!(stats.connections, live as u64, "stats.connections");
    }

    /// No more input: time runs past every deadline, and every request must be done.
    fn finish(&mut self) {
        let end = self.horizon.max(self.now) + Duration::from_millis(1);
        self.advance_to(end);
        assert!(self.outstanding.is_empty(), "requests never completed: {:?}", self.outstanding.keys());
        assert_eq!(self.client.stats().outstanding, 0);
    }
}

fn is_hello(cmd: &[Bytes]) -> bool {
    cmd.first().is_some_and(|n| n.eq_ignore_ascii_case(b"HELLO"))
}

/// The commands in one `Transmit`: whole RESP2 arrays of bulk strings, nothing left over.
fn commands(data: &Bytes) -> Vec<Vec<Bytes>> {
    let mut buf = BytesMut::from(&data[..]);
    let mut out = Vec::new();
    while !buf.is_empty() {
        match decode(&mut buf, Protocol::Resp2, &Limits::default()) {
            Ok(Some(Value::Array(items))) => out.push(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::Bulk(b) => b,
                        other => panic!("a command argument is not a bulk string: {other:?}"),
                    })
                    .collect(),
            ),
            other => panic!("the client transmitted something other than whole commands: {other:?}"),
        }
    }
    out
}

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn error(s: &str) -> Value {
    Value::Error(Bytes::copy_from_slice(s.as_bytes()))
}

/// A map in RESP3, a flat key/value array in RESP2.
fn object(resp3: bool, pairs: Vec<(&str, Value)>) -> Value {
    if resp3 {
        Value::Map(pairs.into_iter().map(|(k, v)| (bulk(k), v)).collect())
    } else {
        Value::Array(pairs.into_iter().flat_map(|(k, v)| [bulk(k), v]).collect())
    }
}

/// The reply to `cmd` from `peer`'s node.
fn reply(
    cmd: &[Bytes],
    answer: &Answer,
    peer: &Peer,
    cluster: Option<&Cluster>,
    named: &mut HashSet<NodeAddr>,
) -> Value {
    let arg =
        |i: usize| cmd.get(i).map(|a| String::from_utf8_lossy(a).to_ascii_uppercase()).unwrap_or_default();
    let slot = || cmd.get(1).map_or(0, |k| key_slot(k).get());
    let redirect = |word: &str, target: &Target, slot_override: &Option<u16>| {
        let slot = slot_override.unwrap_or_else(slot);
        let (to, addr) = match target {
            Target::Known(i) => (node(*i).to_string(), node(*i)),
            Target::New(i) => {
                let addr = NodeAddr::new("10.9.9.9", 8000 + u16::from(i % 3));
                (addr.to_string(), addr)
            }
            Target::Empty(i) => {
                let port = 7000 + u16::from(i % 6);
                (format!(":{port}"), NodeAddr::new(peer.addr.host(), port))
            }
            Target::Itself => (peer.addr.to_string(), peer.addr.clone()),
        };
        (error(&format!("{word} {slot} {to}")), addr)
    };
    let topology_query = arg(0) == "CLUSTER" && (arg(1) == "SHARDS" || arg(1) == "SLOTS");
    if let Some(cluster) = cluster.filter(|_| topology_query) {
        let next = match answer {
            Answer::Natural => Some(0),
            Answer::AltTopology => Some(1),
            _ => None,
        };
        if let Some(next) = next {
            let layout = &cluster.layouts[(cluster.current + next) % cluster.layouts.len()];
            return if arg(1) == "SHARDS" {
                render_shards(layout, peer, named)
            } else {
                render_slots(layout, peer, named)
            };
        }
    }
    match answer {
        Answer::Natural => natural(cmd, peer.resp3, false),
        Answer::AltTopology => natural(cmd, peer.resp3, topology_query),
        Answer::Ok => Value::Simple(Bytes::from_static(b"OK")),
        Answer::Bulk => bulk("value"),
        Answer::Nil => Value::Nil,
        Answer::Int => Value::Int(1),
        Answer::Array(n) => Value::Array((0..n % 5).map(|_| bulk("v")).collect()),
        Answer::Moved(target, slot) | Answer::Ask(target, slot) => {
            let word = if matches!(answer, Answer::Moved(..)) { "MOVED" } else { "ASK" };
            let (value, addr) = redirect(word, target, slot);
            named.insert(addr);
            value
        }
        Answer::TryAgain => error("TRYAGAIN Multiple keys request during rehashing of slot"),
        Answer::ClusterDown => error("CLUSTERDOWN Hash slot not served"),
        Answer::Loading => error("LOADING Valkey is loading the dataset in memory"),
        Answer::ReadOnly => error("READONLY You can't write against a read only replica."),
        Answer::Err => error("ERR something went wrong"),
        Answer::NoAuth => error("NOAUTH Authentication required."),
        Answer::Garbage(_) => Value::Nil,
    }
}

/// What a healthy node says to `cmd` (`alt`: the alternative topology for topology queries).
fn natural(cmd: &[Bytes], resp3: bool, alt: bool) -> Value {
    let name = cmd.first().map(|n| String::from_utf8_lossy(n).to_ascii_uppercase()).unwrap_or_default();
    let sub = cmd.get(1).map(|n| String::from_utf8_lossy(n).to_ascii_uppercase()).unwrap_or_default();
    let keys = cmd.len().saturating_sub(1);
    match (name.as_str(), sub.as_str()) {
        ("HELLO", _) => object(
            true,
            vec![
                ("server", bulk("valkey")),
                ("version", bulk("8.1.0")),
                ("proto", Value::Int(3)),
                ("mode", bulk("cluster")),
                ("modules", Value::Array(Vec::new())),
            ],
        ),
        ("CLUSTER", "SHARDS") => shards(resp3, alt),
        ("CLUSTER", "SLOTS") => slots(alt),
        ("GET", _) => bulk("value"),
        ("MGET", _) => Value::Array((0..keys).map(|_| bulk("value")).collect()),
        ("DEL" | "EXISTS" | "UNLINK" | "TOUCH", _) => Value::Int(i64::try_from(keys).unwrap_or(0)),
        ("INCR" | "DBSIZE", _) => Value::Int(1),
        ("PING", _) => Value::Simple(Bytes::from_static(b"PONG")),
        _ => Value::Simple(Bytes::from_static(b"OK")),
    }
}

/// One node of a topology reply: node `i`, with its role and health.
struct Spec {
    i: u8,
    primary: bool,
    health: &'static str,
}

/// A shard of a topology reply: its slot ranges and its nodes.
type ShardSpec = (Vec<(u16, u16)>, Vec<Spec>);

/// The shards: slot ranges and nodes. The fixed topology is three shards of a primary and a
/// replica; the alternative one has failed shard 0 over to its replica, moved slots 5461..=6000
/// from shard 1 to shard 2, and added node 6 (`127.0.0.1:7006`) as a second replica of shard 2.
fn layout(alt: bool) -> Vec<ShardSpec> {
    let n = |i, primary, health| Spec { i, primary, health };
    if alt {
        vec![
            (vec![(0, 5460)], vec![n(3, true, "online"), n(0, false, "fail")]),
            (vec![(6001, 10922)], vec![n(1, true, "online"), n(4, false, "online")]),
            (
                vec![(5461, 6000), (10923, 16383)],
                vec![n(2, true, "online"), n(5, false, "online"), n(6, false, "loading")],
            ),
        ]
    } else {
        vec![
            (vec![(0, 5460)], vec![n(0, true, "online"), n(3, false, "online")]),
            (vec![(5461, 10922)], vec![n(1, true, "online"), n(4, false, "online")]),
            (vec![(10923, 16383)], vec![n(2, true, "online"), n(5, false, "online")]),
        ]
    }
}

fn node_id(i: u8) -> String {
    format!("{:040x}", u64::from(i) + 0xa11ce)
}

/// The `CLUSTER SHARDS` reply, rendered from the layout by [`Topology::to_shards_reply`].
fn shards(resp3: bool, alt: bool) -> Value {
    let node = |s: &Spec| Node {
        id: Some(node_id(s.i).into()),
        role: if s.primary { Role::Primary } else { Role::Replica },
        health: Health::parse(s.health),
        replication_offset: Some(100),
        ..Node::from_addr(NodeAddr::new("127.0.0.1", 7000 + u16::from(s.i)))
    };
    let shards = layout(alt)
        .into_iter()
        .map(|(ranges, nodes)| {
            let slot = |s: u16| Slot::new(s).expect("a slot of the layout");
            let slots = ranges.iter().filter_map(|&(a, b)| SlotRange::new(slot(a), slot(b))).collect();
            let (primary, replicas): (Vec<&Spec>, Vec<&Spec>) = nodes.iter().partition(|s| s.primary);
            Shard { slots, primary: node(primary[0]), replicas: replicas.into_iter().map(node).collect() }
        })
        .collect();
    let topology = Topology::from_shards(shards).expect("the layout is a valid topology");
    topology.to_shards_reply(if resp3 { Protocol::Resp3 } else { Protocol::Resp2 }, false)
}

/// The `CLUSTER SLOTS` reply (failed and loading nodes left out, as servers do).
fn slots(alt: bool) -> Value {
    let mut entries = Vec::new();
    for (ranges, nodes) in layout(alt) {
        for (a, b) in ranges {
            let mut entry = vec![Value::Int(i64::from(a)), Value::Int(i64::from(b))];
            for s in nodes.iter().filter(|s| s.health == "online") {
                entry.push(Value::Array(vec![
                    bulk("127.0.0.1"),
                    Value::Int(7000 + i64::from(s.i)),
                    bulk(&node_id(s.i)),
                ]));
            }
            entries.push(Value::Array(entry));
        }
    }
    Value::Array(entries)
}

/// Most topologies one `client_topology` input generates.
const MAX_LAYOUTS: usize = 4;

/// How many nodes the generated cluster draws from: `127.0.0.1:7000..=7009`, also known as
/// `node<i>.fuzz`.
const POOL: u8 = 10;

/// A cluster that moves between generated topologies (`client_topology`): the replies to
/// `CLUSTER SHARDS` and `CLUSTER SLOTS` render the current one ([`Answer::AltTopology`]: the
/// next one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cluster {
    pub(crate) layouts: Vec<Vec<GenShard>>,
    pub(crate) current: usize,
}

/// A generated shard: up to three slot ranges (gaps, overlaps with other shards, the odd
/// reversed or out-of-range pair) and up to four nodes (none, no primary or two primaries
/// included).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) struct GenShard {
    /// `(start, span)`: slots `start % 16384` to `start % 16384 + span % 8192`, cut at 16383;
    /// a span of `u16::MAX` makes the pair reversed, `u16::MAX - 1` out of range.
    pub(crate) ranges: [(u16, u16); 3],
    /// How many of `ranges` (`n % 4`).
    pub(crate) n_ranges: u8,
    pub(crate) nodes: [GenNode; 4],
    /// How many of `nodes` (`n % 5`).
    pub(crate) n_nodes: u8,
}

/// A generated node of a shard.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) struct GenNode {
    /// Which node of the pool (`i % POOL`).
    pub(crate) who: u8,
    pub(crate) primary: bool,
    /// `online` (twice as likely), `loading`, `fail` (`n % 4`).
    pub(crate) health: u8,
    pub(crate) endpoint: Endpoint,
    /// Whether the reply announces the node's hostname.
    pub(crate) hostname: bool,
}

/// What a topology reply gives as a node's endpoint.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// Its IP address.
    Ip,
    /// Its hostname (`node<i>.fuzz`).
    Hostname,
    /// Empty: the answering node's host.
    Empty,
    /// `?` (an unknown endpoint).
    Unknown,
    /// Nil.
    Nil,
}

/// One step of `client_topology`.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) enum TopoOp {
    /// Any step of `client_ops`.
    Base(Op),
    /// The cluster's topology becomes generated layout `i` (a failover, a resharding, nodes
    /// joining or leaving), as later topology replies will say.
    Change(u8),
    /// `MOVED` (or `ASK`) for the command's slot (or this one) to pool node `who`, by IP address
    /// or hostname, answering the oldest command of an open connection.
    Redirect(u8, bool, u8, Option<u16>, bool),
}

/// `client_topology`: like [`client_ops`], against a cluster whose topology the input
/// generates (one to four layouts of one to five shards over ten nodes) and changes.
pub fn client_topology(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else { return };
    let Ok(n) = u8::arbitrary(&mut u) else { return };
    let mut layouts = Vec::new();
    for _ in 0..=usize::from(n) % MAX_LAYOUTS {
        let Ok(shards) = u8::arbitrary(&mut u) else { return };
        let mut layout = Vec::new();
        for _ in 0..=shards % 5 {
            match GenShard::arbitrary(&mut u) {
                Ok(shard) => layout.push(shard),
                Err(_) => return,
            }
        }
        layouts.push(layout);
    }
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match TopoOp::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    run_topology(&setup, Cluster { layouts, current: 0 }, &ops);
}

/// Plays `ops` against `cluster` and runs the end-of-input checks.
pub(crate) fn run_topology(setup: &Setup, cluster: Cluster, ops: &[TopoOp]) -> Harness {
    let mut h = Harness::new(setup, Some(cluster));
    for op in ops {
        match op {
            TopoOp::Base(op) => h.apply(op),
            TopoOp::Change(i) => {
                if let Some(c) = h.cluster.as_mut() {
                    c.current = usize::from(*i) % c.layouts.len();
                }
            }
            TopoOp::Redirect(conn, ask, who, slot, by_name) => {
                if let Some(id) = h.pick_where(*conn, |p| p.state == State::Open && !p.unanswered.is_empty())
                {
                    let cmd = h.peers.get_mut(&id).and_then(|p| p.unanswered.pop_front()).unwrap_or_default();
                    let slot = slot.unwrap_or_else(|| cmd.get(1).map_or(0, |k| key_slot(k).get()));
                    let (ip, host, port) = pool(*who);
                    h.named.insert(NodeAddr::new(ip, port));
                    h.named.insert(NodeAddr::new(host.as_str(), port));
                    let to = if *by_name { host } else { ip.to_owned() };
                    let word = if *ask { "ASK" } else { "MOVED" };
                    let resp3 = h.peers.get(&id).is_some_and(|p| p.resp3);
                    let mut out = BytesMut::new();
                    let protocol = if resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
                    encode_value(&mut out, &error(&format!("{word} {slot} {to}:{port}")), protocol)
                        .expect("an error reply encodes");
                    h.deliver(id, &out, [0, 0]);
                }
                h.drain();
            }
        }
    }
    h.finish();
    h
}

/// Pool node `who`: its IP address, hostname and port.
fn pool(who: u8) -> (&'static str, String, u16) {
    let who = who % POOL;
    ("127.0.0.1", format!("node{who}.fuzz"), 7000 + u16::from(who))
}

impl GenShard {
    /// The slot ranges as the reply gives them.
    fn ranges(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.ranges.iter().take(usize::from(self.n_ranges % 4)).map(|&(start, span)| {
            let start = start % 16384;
            match span {
                u16::MAX => (start, start.wrapping_sub(1)),
                0xFFFE => (start, 16384),
                _ => (start, start.saturating_add(span % 8192).min(16383)),
            }
        })
    }

    /// The nodes, primaries first (the order `CLUSTER SLOTS` needs).
    fn nodes(&self) -> Vec<&GenNode> {
        let mut nodes: Vec<&GenNode> = self.nodes.iter().take(usize::from(self.n_nodes % 5)).collect();
        nodes.sort_by_key(|n| !n.primary);
        nodes
    }
}

impl GenNode {
    fn health(&self) -> &'static str {
        ["online", "online", "loading", "fail"][usize::from(self.health % 4)]
    }

    /// The endpoint value, naming every address the client may take from it.
    fn endpoint(&self, peer: &Peer, named: &mut HashSet<NodeAddr>) -> Value {
        let (ip, host, port) = pool(self.who);
        named.insert(NodeAddr::new(ip, port));
        named.insert(NodeAddr::new(host.as_str(), port));
        named.insert(NodeAddr::new(peer.addr.host(), port));
        match self.endpoint {
            Endpoint::Ip => bulk(ip),
            Endpoint::Hostname => bulk(&host),
            Endpoint::Empty => bulk(""),
            Endpoint::Unknown => bulk("?"),
            Endpoint::Nil => Value::Nil,
        }
    }
}

/// The `CLUSTER SHARDS` reply for a generated layout.
fn render_shards(layout: &[GenShard], peer: &Peer, named: &mut HashSet<NodeAddr>) -> Value {
    let shards = layout.iter().map(|shard| {
        let slots = shard.ranges().flat_map(|(a, b)| [Value::Int(i64::from(a)), Value::Int(i64::from(b))]);
        let nodes = shard.nodes().into_iter().map(|n| {
            let (ip, host, port) = pool(n.who);
            let mut fields = vec![
                ("id", bulk(&node_id(n.who % POOL))),
                ("port", Value::Int(i64::from(port))),
                ("ip", bulk(ip)),
                ("endpoint", n.endpoint(peer, named)),
            ];
            if n.hostname {
                fields.push(("hostname", bulk(&host)));
            }
            fields.push(("role", bulk(if n.primary { "master" } else { "replica" })));
            fields.push(("replication-offset", Value::Int(100)));
            fields.push(("health", bulk(n.health())));
            object(peer.resp3, fields)
        });
        object(
            peer.resp3,
            vec![("slots", Value::Array(slots.collect())), ("nodes", Value::Array(nodes.collect()))],
        )
    });
    Value::Array(shards.collect())
}

/// The `CLUSTER SLOTS` reply for a generated layout (nodes that are not online left out, as
/// servers do; the first node listed is the primary).
fn render_slots(layout: &[GenShard], peer: &Peer, named: &mut HashSet<NodeAddr>) -> Value {
    let mut entries = Vec::new();
    for shard in layout {
        for (a, b) in shard.ranges() {
            let mut entry = vec![Value::Int(i64::from(a)), Value::Int(i64::from(b))];
            for n in shard.nodes().into_iter().filter(|n| n.health() == "online") {
                let (_, host, port) = pool(n.who);
                let mut node =
                    vec![n.endpoint(peer, named), Value::Int(i64::from(port)), bulk(&node_id(n.who % POOL))];
                if n.hostname {
                    node.push(object(peer.resp3, vec![("hostname", bulk(&host))]));
                }
                entry.push(Value::Array(node));
            }
            entries.push(Value::Array(entry));
        }
    }
    Value::Array(entries)
}

#[cfg(test)]
mod tests {
    //! Hand-made scenarios: each is a seed of `fuzz/corpus/client_ops/` (the committed file must
    //! be exactly its encoding; `print_seeds` prints them) and a unit test of its own.

    use super::*;

    /// Writes values the way `arbitrary` reads them back.
    trait Enc {
        fn enc(&self, out: &mut Vec<u8>);
    }

    impl Enc for u8 {
        fn enc(&self, out: &mut Vec<u8>) {
            out.push(*self);
        }
    }

    impl Enc for u16 {
        fn enc(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.to_le_bytes());
        }
    }

    impl Enc for bool {
        fn enc(&self, out: &mut Vec<u8>) {
            out.push(u8::from(*self));
        }
    }

    impl<T: Enc> Enc for Option<T> {
        fn enc(&self, out: &mut Vec<u8>) {
            self.is_some().enc(out);
            if let Some(v) = self {
                v.enc(out);
            }
        }
    }

    impl<T: Enc, const N: usize> Enc for [T; N] {
        fn enc(&self, out: &mut Vec<u8>) {
            self.iter().for_each(|v| v.enc(out));
        }
    }

    /// An enum's variant `i` of `n`: the derive maps a `u32` `x` to `(x * n) >> 32`.
    fn tag(out: &mut Vec<u8>, i: u64, n: u64) {
        let x = u32::try_from((i << 32).div_ceil(n)).expect("i < n");
        out.extend_from_slice(&x.to_le_bytes());
    }

    impl Enc for Setup {
        fn enc(&self, out: &mut Vec<u8>) {
            let Self { resp3, password, name, replicas, two_conns, tight, seed } = self;
            [*resp3, *password, *name, *replicas, *two_conns, *tight].enc(out);
            seed.enc(out);
        }
    }

    impl Enc for Op {
        fn enc(&self, out: &mut Vec<u8>) {
            let n = 14;
            match self {
                Self::Submit(r, t) => (tag(out, 0, n), r.enc(out), t.enc(out)).0,
                Self::Reply(c, a, m, cuts) => {
                    (tag(out, 1, n), c.enc(out), a.enc(out), m.enc(out), cuts.enc(out)).0
                }
                Self::Unsolicited(c) => (tag(out, 2, n), c.enc(out)).0,
                Self::Push(c) => (tag(out, 3, n), c.enc(out)).0,
                Self::Connected(c) => (tag(out, 4, n), c.enc(out)).0,
                Self::ConnectFailed(c) => (tag(out, 5, n), c.enc(out)).0,
                Self::Disconnect(c) => (tag(out, 6, n), c.enc(out)).0,
                Self::Stale(c, w) => (tag(out, 7, n), c.enc(out), w.enc(out)).0,
                Self::Advance(ms) => (tag(out, 8, n), ms.enc(out)).0,
                Self::Wake => tag(out, 9, n),
                Self::Refresh => tag(out, 10, n),
                Self::Shutdown(c) => (tag(out, 11, n), c.enc(out)).0,
                Self::Late(ms) => (tag(out, 12, n), ms.enc(out)).0,
                Self::Partial(c, a, k) => (tag(out, 13, n), c.enc(out), a.enc(out), k.enc(out)).0,
            }
        }
    }

    impl Enc for Req {
        fn enc(&self, out: &mut Vec<u8>) {
            let n = 10;
            match self {
                Self::Get(k) => (tag(out, 0, n), k.enc(out)).0,
                Self::Set(k) => (tag(out, 1, n), k.enc(out)).0,
                Self::Incr(k) => (tag(out, 2, n), k.enc(out)).0,
                Self::MGet(k, c) => (tag(out, 3, n), k.enc(out), c.enc(out)).0,
                Self::Del(k, c) => (tag(out, 4, n), k.enc(out), c.enc(out)).0,
                Self::Pipeline(s, c) => (tag(out, 5, n), s.enc(out), c.enc(out)).0,
                Self::Ping => tag(out, 6, n),
                Self::DbSize => tag(out, 7, n),
                Self::NodePing(i) => (tag(out, 8, n), i.enc(out)).0,
                Self::Empty => tag(out, 9, n),
            }
        }
    }

    impl Enc for Simple {
        fn enc(&self, out: &mut Vec<u8>) {
            let (i, k) = match self {
                Self::Get(k) => (0, k),
                Self::Set(k) => (1, k),
                Self::Incr(k) => (2, k),
                Self::Del(k) => (3, k),
            };
            tag(out, i, 4);
            k.enc(out);
        }
    }

    impl Enc for Answer {
        fn enc(&self, out: &mut Vec<u8>) {
            let n = 16;
            match self {
                Self::Natural => tag(out, 0, n),
                Self::Ok => tag(out, 1, n),
                Self::Bulk => tag(out, 2, n),
                Self::Nil => tag(out, 3, n),
                Self::Int => tag(out, 4, n),
                Self::Array(c) => (tag(out, 5, n), c.enc(out)).0,
                Self::Moved(t, s) => (tag(out, 6, n), t.enc(out), s.enc(out)).0,
                Self::Ask(t, s) => (tag(out, 7, n), t.enc(out), s.enc(out)).0,
                Self::TryAgain => tag(out, 8, n),
                Self::ClusterDown => tag(out, 9, n),
                Self::Loading => tag(out, 10, n),
                Self::ReadOnly => tag(out, 11, n),
                Self::Err => tag(out, 12, n),
                Self::NoAuth => tag(out, 13, n),
                Self::Garbage(b) => (tag(out, 14, n), b.enc(out)).0,
                Self::AltTopology => tag(out, 15, n),
            }
        }
    }

    impl Enc for Target {
        fn enc(&self, out: &mut Vec<u8>) {
            match self {
                Self::Known(i) => (tag(out, 0, 4), i.enc(out)).0,
                Self::New(i) => (tag(out, 1, 4), i.enc(out)).0,
                Self::Empty(i) => (tag(out, 2, 4), i.enc(out)).0,
                Self::Itself => tag(out, 3, 4),
            }
        }
    }

    fn encode(setup: &Setup, ops: &[Op]) -> Vec<u8> {
        let mut out = Vec::new();
        setup.enc(&mut out);
        ops.iter().for_each(|op| op.enc(&mut out));
        out
    }

    fn decode_input(data: &[u8]) -> (Setup, Vec<Op>) {
        let mut u = Unstructured::new(data);
        let setup = Setup::arbitrary(&mut u).expect("setup");
        let mut ops = Vec::new();
        while !u.is_empty() {
            ops.push(Op::arbitrary(&mut u).expect("op"));
        }
        (setup, ops)
    }

    const RESP3: Setup = Setup {
        resp3: true,
        password: false,
        name: false,
        replicas: false,
        two_conns: false,
        tight: false,
        seed: 1,
    };

    /// Answers everything: opens every dialling connection and answers every command naturally,
    /// a few rounds (each round opens what the last one asked for).
    fn settle() -> Vec<Op> {
        let mut ops = Vec::new();
        for _ in 0..3 {
            ops.extend((0..4).map(|_| Op::Connected(0)));
            ops.extend((0..4).map(|_| Op::Reply(0, Answer::Natural, 3, [3, 40])));
        }
        ops
    }

    /// Opens every dialling connection and answers the first command (the handshake's `HELLO`)
    /// of the first `n` connections with something to answer.
    fn open(n: u8) -> Vec<Op> {
        let mut ops: Vec<Op> = (0..4).map(|_| Op::Connected(0)).collect();
        ops.extend((0..n).map(|i| Op::Reply(i, Answer::Natural, 0, [0, 0])));
        ops
    }

    fn get(k: u8) -> Op {
        Op::Submit(Req::Get(k), None)
    }

    fn reply(conn: u8, answer: Answer) -> Op {
        Op::Reply(conn, answer, 0, [0, 0])
    }

    /// `parts` joined.
    fn seq(parts: impl IntoIterator<Item = Vec<Op>>) -> Vec<Op> {
        parts.into_iter().flatten().collect()
    }

    /// The scenarios: name, setup, operations. Keys: `foo` (slot 12182, node 2), `bar` (5061,
    /// node 0), `{t}1`/`{t}2` (one slot), `user:1000`. The client's first seed is node 0 or 1.
    fn scenarios() -> Vec<(&'static str, Setup, Vec<Op>)> {
        let resp2_all = Setup {
            resp3: false,
            password: true,
            name: true,
            replicas: true,
            two_conns: true,
            tight: false,
            seed: 2,
        };
        vec![
            ("happy_resp3", RESP3, seq([settle(), vec![get(0), get(1), get(3)], settle()])),
            (
                "resp2_auth_name_replicas",
                resp2_all,
                seq([
                    settle(),
                    vec![
                        get(2),
                        Op::Submit(Req::MGet([0, 1, 2, 5], 3), Some(500)),
                        Op::Submit(
                            Req::Pipeline(
                                [Simple::Set(0), Simple::Get(3), Simple::Incr(4), Simple::Del(1)],
                                3,
                            ),
                            None,
                        ),
                    ],
                    settle(),
                ]),
            ),
            (
                "moved_ask",
                RESP3,
                seq([
                    settle(),
                    vec![get(0), get(1)],
                    open(2),
                    vec![
                        reply(0, Answer::Moved(Target::New(0), None)),
                        reply(0, Answer::Ask(Target::Known(2), None)),
                    ],
                    settle(),
                    vec![
                        get(5),
                        reply(0, Answer::Moved(Target::Itself, None)),
                        reply(0, Answer::Moved(Target::Empty(1), None)),
                    ],
                    settle(),
                ]),
            ),
            (
                "errors_and_garbage",
                RESP3,
                seq([
                    settle(),
                    vec![get(0), Op::Submit(Req::Incr(1), None), Op::Submit(Req::DbSize, None)],
                    open(3),
                    vec![
                        Op::Reply(0, Answer::TryAgain, 0, [1, 2]),
                        reply(1, Answer::ClusterDown),
                        Op::Advance(50),
                        reply(0, Answer::Garbage(*b"?!x\0")),
                        reply(0, Answer::Array(3)),
                    ],
                    settle(),
                ]),
            ),
            (
                "timeouts_and_drops",
                RESP3,
                seq([
                    settle(),
                    vec![
                        Op::Submit(Req::Set(0), Some(0)),
                        Op::Submit(Req::Incr(1), Some(30)),
                        Op::Submit(Req::Get(3), Some(300)),
                    ],
                    open(3),
                    vec![
                        Op::Disconnect(1),
                        Op::Advance(10),
                        Op::ConnectFailed(0),
                        Op::Stale(0, 0),
                        Op::Stale(0, 1),
                        Op::Partial(0, Answer::Bulk, 3),
                        Op::Late(2000),
                    ],
                    settle(),
                ]),
            ),
            (
                "hello_refused_then_refresh",
                Setup { two_conns: true, ..RESP3 },
                seq([
                    vec![Op::Connected(0), reply(0, Answer::Err)],
                    settle(),
                    vec![
                        Op::Submit(Req::NodePing(4), None),
                        Op::Submit(Req::Ping, None),
                        Op::Refresh,
                        Op::Advance(150),
                    ],
                    open(4),
                    (0..4).map(|_| reply(0, Answer::AltTopology)).collect(),
                    vec![Op::Push(1)],
                    settle(),
                ]),
            ),
            (
                "tight_then_shutdown",
                Setup { tight: true, ..RESP3 },
                seq([
                    settle(),
                    vec![
                        Op::Submit(Req::Del([0, 1, 2, 3], 3), None),
                        Op::Submit(Req::MGet([3, 4, 0, 0], 1), None),
                        get(0),
                        get(1),
                        Op::Submit(Req::Empty, None),
                        Op::Unsolicited(0),
                        Op::Wake,
                        Op::Shutdown(0xC0),
                        get(0),
                    ],
                ]),
            ),
        ]
    }

    #[test]
    fn encoding_round_trips() {
        for (name, setup, ops) in scenarios() {
            assert_eq!(decode_input(&encode(&setup, &ops)), (setup, ops), "{name}");
        }
    }

    #[test]
    fn scenarios_hold() {
        for (name, setup, ops) in scenarios() {
            let h = run(&setup, &ops);
            let stats = h.client.stats();
            assert!(h.completions > 0 && h.transmits > 0, "{name} did nothing: {h:?}");
            let expect = |what: &str, ok: bool| assert!(ok, "{name}: {what}: {stats:?}");
            match name {
                "happy_resp3" => {
                    expect("three clean GETs", (h.completions, h.failures, h.topology_changes) == (3, 0, 1))
                }
                "resp2_auth_name_replicas" => expect("all served", stats.failed == 0 && stats.requests == 3),
                "moved_ask" => {
                    expect("redirected and served", stats.moved >= 2 && stats.ask == 1 && stats.failed == 0)
                }
                "errors_and_garbage" => {
                    expect("retried, then garbage", stats.tryagain == 1 && stats.protocol_errors == 1)
                }
                "timeouts_and_drops" => expect("timed out", stats.timeouts >= 1 && stats.disconnects >= 2),
                "hello_refused_then_refresh" => expect("second topology", h.topology_changes == 2),
                "tight_then_shutdown" => expect("all failed", h.failures == h.completions),
                _ => {}
            }
        }
    }

    #[test]
    fn committed_seeds_are_the_scenarios() {
        let committed: [(&str, &[u8]); 7] = [
            ("happy_resp3", include_bytes!("../../../fuzz/corpus/client_ops/happy_resp3")),
            (
                "resp2_auth_name_replicas",
                include_bytes!("../../../fuzz/corpus/client_ops/resp2_auth_name_replicas"),
            ),
            ("moved_ask", include_bytes!("../../../fuzz/corpus/client_ops/moved_ask")),
            ("errors_and_garbage", include_bytes!("../../../fuzz/corpus/client_ops/errors_and_garbage")),
            ("timeouts_and_drops", include_bytes!("../../../fuzz/corpus/client_ops/timeouts_and_drops")),
            (
                "hello_refused_then_refresh",
                include_bytes!("../../../fuzz/corpus/client_ops/hello_refused_then_refresh"),
            ),
            ("tight_then_shutdown", include_bytes!("../../../fuzz/corpus/client_ops/tight_then_shutdown")),
        ];
        for ((name, setup, ops), (file, bytes)) in scenarios().into_iter().zip(committed) {
            assert_eq!(name, file);
            assert_eq!(
                bytes,
                encode(&setup, &ops),
                "fuzz/corpus/client_ops/{name} is stale: see print_seeds"
            );
            client_ops(bytes);
        }
        client_ops(b"");
        client_ops(&[0xff; 64]);
    }

    /// Prints every scenario as `name hex`, to (re)write the seed corpus:
    /// `cargo test -p slotcache-core --lib client::fuzz::tests::print_seeds -- --ignored
    /// --nocapture | grep '^seed ' | while read _ n h; do echo $h | xxd -r -p >
    /// fuzz/corpus/client_ops/$n; done`.
    #[test]
    #[ignore = "a tool, not a test"]
    fn print_seeds() {
        for (name, setup, ops) in scenarios() {
            let hex: String = encode(&setup, &ops).iter().map(|b| format!("{b:02x}")).collect();
            println!("seed {name} {hex}");
        }
    }

    fn gen_node(who: u8, primary: bool, endpoint: Endpoint) -> GenNode {
        GenNode { who, primary, health: 0, endpoint, hostname: who % 2 == 0 }
    }

    /// A shard over `ranges` with a primary and a replica.
    fn gen_shard(ranges: &[(u16, u16)], primary: u8, replica: u8, endpoint: Endpoint) -> GenShard {
        let mut r = [(0, 0); 3];
        r[..ranges.len()].copy_from_slice(ranges);
        let n = gen_node(0, false, Endpoint::Ip);
        GenShard {
            ranges: r,
            n_ranges: u8::try_from(ranges.len()).expect("at most three"),
            nodes: [gen_node(primary, true, endpoint), gen_node(replica, false, endpoint), n.clone(), n],
            n_nodes: 2,
        }
    }

    /// The generated cluster: one shard over every slot, then a failover into three shards with
    /// new nodes and hostnames, then five shards with gaps, overlaps and empty endpoints.
    fn gen_cluster() -> Cluster {
        Cluster {
            layouts: vec![
                vec![gen_shard(&[(0, 8191), (8192, 8191)], 0, 1, Endpoint::Ip)],
                vec![
                    gen_shard(&[(0, 5460)], 1, 0, Endpoint::Hostname),
                    gen_shard(&[(5461, 5461)], 7, 8, Endpoint::Ip),
                    gen_shard(&[(10923, 5460)], 9, 2, Endpoint::Empty),
                ],
                vec![
                    gen_shard(&[(0, 3000)], 3, 4, Endpoint::Unknown),
                    gen_shard(&[(2000, 3000)], 5, 6, Endpoint::Nil),
                    gen_shard(&[(9000, u16::MAX)], 7, 8, Endpoint::Ip),
                    gen_shard(&[(12000, 0xFFFE)], 9, 0, Endpoint::Empty),
                    gen_shard(&[(13000, 3383)], 1, 2, Endpoint::Hostname),
                ],
            ],
            current: 0,
        }
    }

    #[test]
    fn generated_topologies_hold() {
        let base = |ops: Vec<Op>| ops.into_iter().map(TopoOp::Base).collect::<Vec<_>>();
        let ops: Vec<TopoOp> = [
            base(settle()),
            base(vec![get(0), get(1)]),
            base(open(2)),
            vec![TopoOp::Redirect(0, false, 7, None, true), TopoOp::Redirect(0, true, 9, None, false)],
            base(settle()),
            vec![TopoOp::Change(1), TopoOp::Base(Op::Refresh), TopoOp::Base(Op::Advance(200))],
            base(settle()),
            base(vec![get(2), get(3), get(5)]),
            base(settle()),
            vec![TopoOp::Change(2), TopoOp::Base(Op::Refresh), TopoOp::Base(Op::Advance(200))],
            base(settle()),
            base(vec![get(0), Op::Submit(Req::MGet([0, 1, 2, 5], 3), None)]),
            base(settle()),
        ]
        .into_iter()
        .flatten()
        .collect();
        for setup in [RESP3, Setup { resp3: false, replicas: true, two_conns: true, ..RESP3 }] {
            let h = run_topology(&setup, gen_cluster(), &ops);
            assert!(h.completions >= 7, "{h:?}");
            assert!(h.topology_changes >= 2, "the generated topologies were applied: {h:?}");
        }
    }

    #[test]
    fn client_topology_takes_any_bytes() {
        client_topology(b"");
        client_topology(&[0xff; 64]);
        client_topology(&[0; 300]);
        let mut data: Vec<u8> = (0..=255).collect();
        data.extend((0..=255u8).rev());
        client_topology(&data);
        client_topology(include_bytes!("../../../fuzz/corpus/client_ops/happy_resp3"));
    }
}
