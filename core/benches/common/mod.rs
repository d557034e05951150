//! Shared by the scale benches (`topology.rs`, `memory.rs`): a cluster of N shards as the bytes
//! of its `CLUSTER SHARDS` reply, and a minimal server that drives the sans-IO [`Client`] with
//! no socket (it answers the handshake and the topology query, and answers or holds the rest).
//!
//! The cluster looks like a production one: every node on its own host (`10.x.y.z`, port
//! 6379), a 40-character hex id, a replication offset, health `online`; each shard owns one
//! contiguous range of slots (16384 / N, the remainder spread over the first shards).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use slotcache_core::client::{Client, ClientConfig, ConnId, Input, Output, Request};
use slotcache_core::resp::{Limits, decode_slice, encode_value};
use slotcache_core::topology::{Node, RefreshReason, Role, Shard, SlotRange, Topology};
use slotcache_core::{NodeAddr, Protocol, SLOT_COUNT, Slot, key_slot};

/// What the adapters read from a socket at a time (`adapters/rt`'s `READ_CHUNK`).
const READ_CHUNK: usize = 64 * 1024;

/// Node `i` of the cluster: its own host, port 6379.
pub(crate) fn node_addr(i: usize) -> NodeAddr {
    NodeAddr::new(format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff), 6379)
}

fn node(i: usize, role: Role) -> Node {
    let mut n = Node::from_addr(node_addr(i));
    n.id = Some(Arc::from(format!("{:040x}", 0x5107_cace_u64.wrapping_mul(i as u64 + 1))));
    n.role = role;
    n.replication_offset = Some(1_234_567_890 + i as i64);
    n
}

/// A cluster of `shards` shards with `replicas` replicas each (nodes numbered primaries first,
/// then each shard's replicas).
pub(crate) fn cluster(shards: usize, replicas: usize) -> Topology {
    let slots = usize::from(SLOT_COUNT);
    let mut start = 0usize;
    let list = (0..shards)
        .map(|s| {
            let len = slots / shards + usize::from(s < slots % shards);
            let at = |i: usize| Slot::new(u16::try_from(i).expect("a slot")).expect("a slot");
            let range = SlotRange::new(at(start), at(start + len - 1)).expect("a range");
            start += len;
            Shard {
                slots: vec![range],
                primary: node(s, Role::Primary),
                replicas: (0..replicas).map(|r| node(shards + s * replicas + r, Role::Replica)).collect(),
            }
        })
        .collect();
    Topology::from_shards(list).expect("a valid cluster")
}

/// The `CLUSTER SHARDS` reply of [`cluster`]`(shards, 1)` as a RESP3 server sends it.
pub(crate) fn shards_reply(shards: usize) -> Bytes {
    let mut buf = BytesMut::new();
    encode_value(&mut buf, &cluster(shards, 1).to_shards_reply(Protocol::Resp3, false), Protocol::Resp3)
        .expect("encodable");
    buf.freeze()
}

/// For every slot, a hash tag that maps to it (`key_slot("{tag}...")` is that slot).
pub(crate) fn tags() -> Vec<String> {
    let mut tags = vec![String::new(); usize::from(SLOT_COUNT)];
    let mut left = tags.len();
    let mut i = 0u64;
    while left > 0 {
        let tag = format!("t{i}");
        let cell = &mut tags[key_slot(tag.as_bytes()).index()];
        if cell.is_empty() {
            *cell = tag;
            left -= 1;
        }
        i += 1;
    }
    tags
}

/// A [`Client`] and the cluster it talks to, in memory. Every command the client writes is
/// answered at once, except the caller's commands while [`Server::hold`] is set: those stay
/// pending (written, unanswered), as with a slow server.
pub(crate) struct Server {
    pub(crate) client: Client,
    pub(crate) now: Instant,
    reply: Bytes,
    /// Hold the caller's commands (`GET`, `SET`) unanswered.
    pub(crate) hold: bool,
    /// Commands held so far.
    pub(crate) held: usize,
    /// Completions seen.
    pub(crate) completed: usize,
    /// The instant the client last asked to be woken at.
    wake: Option<Instant>,
    addrs: HashMap<ConnId, NodeAddr>,
}

impl Server {
    /// A client (configured by `cfg`, whose seeds are replaced by node 0) of a cluster of
    /// `shards` shards with one replica each, driven until it has its topology. `reply` is that
    /// cluster's [`shards_reply`], made by the caller (so that it can leave it out of what it
    /// measures).
    pub(crate) fn new(shards: usize, reply: Bytes, mut cfg: ClientConfig, now: Instant) -> Self {
        cfg.seeds = vec![node_addr(0)];
        let client = Client::new(cfg, now).expect("a valid configuration");
        let mut s = Self {
            client,
            now,
            reply,
            hold: false,
            held: 0,
            completed: 0,
            wake: None,
            addrs: HashMap::new(),
        };
        s.pump();
        assert!(
            s.client.topology().is_some_and(|t| t.shards().len() == shards),
            "the client has its topology"
        );
        s
    }

    /// Submits `request` and drives the client until it waits.
    pub(crate) fn submit(&mut self, request: Request) {
        self.client.submit(self.now, request).expect("submitted");
        self.pump();
    }

    /// Asks for a topology refresh and runs virtual time (the refresh policy's pacing and
    /// jitter) until it has been applied.
    pub(crate) fn refresh(&mut self) {
        let done = self.client.stats().refresh_successes;
        self.client.request_refresh(self.now, RefreshReason::Manual);
        self.pump();
        while self.client.stats().refresh_successes == done {
            let at = self.wake.expect("a refresh is pending");
            self.now = self.now.max(at);
            self.client.handle_input(self.now, Input::Timeout);
            self.pump();
        }
    }

    /// Connections the client holds.
    pub(crate) fn connections(&self) -> u64 {
        self.client.stats().connections
    }

    /// Drains the client's outputs, opening connections and answering commands, until it waits.
    pub(crate) fn pump(&mut self) {
        loop {
            match self.client.poll_output() {
                Output::Wait(at) => {
                    self.wake = at;
                    return;
                }
                Output::Connect { conn, addr } => {
                    self.addrs.insert(conn, addr);
                    self.client.handle_input(self.now, Input::Connected(conn));
                }
                Output::Transmit { conn, data } => {
                    let answer = self.answer(&data);
                    drop(data); // written to the socket
                    // In the adapter's read size (adapters/rt reads 64 KiB at a time).
                    for chunk in answer.chunks(READ_CHUNK) {
                        self.client.handle_input(self.now, Input::Received(conn, chunk));
                    }
                }
                Output::Close { conn } => {
                    self.addrs.remove(&conn);
                }
                Output::Completed { result, .. } => {
                    result.expect("the request succeeds");
                    self.completed += 1;
                }
                _ => {}
            }
        }
    }

    /// The replies to the commands in `data`, in order.
    fn answer(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let (cmd, len) = decode_slice(&data[at..], Protocol::Resp2, &Limits::default())
                .expect("a valid command")
                .expect("a whole command");
            at += len;
            let args = cmd.as_array().expect("a command is an array");
            let name = args[0].as_str().expect("a name").to_ascii_uppercase();
            match name.as_str() {
                "HELLO" => out.extend_from_slice(b"%1\r\n$5\r\nproto\r\n:3\r\n"),
                "CLUSTER" => out.extend_from_slice(&self.reply),
                "GET" | "SET" if self.hold => self.held += 1,
                "GET" => out.extend_from_slice(b"_\r\n"),
                _ => out.extend_from_slice(b"+OK\r\n"),
            }
        }
        out
    }
}
