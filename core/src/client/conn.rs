//! One connection's state: handshake, the in-flight FIFO and its buffers.
//!
//! Replies come back in the order commands were written, so every written command leaves an
//! [`Expect`] in the FIFO that says what its reply is for. Handshake commands go first; caller
//! commands wait in `queued` until the handshake is done, then are written in one batch.

use bytes::BytesMut;
use std::collections::VecDeque;
use std::time::Instant;

use crate::node_addr::NodeAddr;
use crate::resp::{Protocol, encode_command};

use super::arena::Id;
use super::config::{ClientConfig, ReadFrom};
use super::mode::Mode;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// The adapter is dialling (and doing TLS).
    Connecting,
    /// Handshake commands are written and their replies awaited.
    Handshaking,
    /// Serving requests.
    Ready,
}

/// What the next reply on a connection answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// `HELLO 3 ...`.
    Hello,
    /// RESP2 fallback `AUTH`.
    Auth,
    /// `CLIENT SETNAME`.
    SetName,
    /// `READONLY` (replica reads), in the handshake.
    ReadOnly,
    /// `READONLY` or `READWRITE` on a connection past its handshake, when the node's role in
    /// the topology changed (see [`Conn::sync_mode`]); its `+OK` is dropped.
    Mode,
    /// `ASKING` before a redirected command; its `+OK` is dropped.
    Asking,
    /// A caller's sub-request.
    Sub(Id),
    /// A topology query (`CLUSTER SHARDS` or, as fallback, `CLUSTER SLOTS`; `INFO` on a
    /// standalone node).
    Topology(TopologyQuery),
}

/// Which topology command was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TopologyQuery {
    /// `CLUSTER SHARDS`.
    Shards,
    /// `CLUSTER SLOTS`.
    Slots,
    /// `INFO` (default sections: `cluster_enabled` and the replication section), for a
    /// standalone node.
    Info,
}

impl TopologyQuery {
    /// The command's arguments.
    pub(crate) const fn command(self) -> &'static [&'static str] {
        match self {
            Self::Shards => &["CLUSTER", "SHARDS"],
            Self::Slots => &["CLUSTER", "SLOTS"],
            Self::Info => &["INFO"],
        }
    }
}

/// The largest frame after which a connection keeps its read buffer's allocation (one read of
/// the adapters, `adapters/rt`'s `READ_CHUNK`). A longer reply (a `CLUSTER SHARDS` of a large
/// cluster, a large value) grows the buffer to its size; without letting it go, every
/// connection that ever carried such a reply would hold that much for good (the periodic
/// refresh asks a different primary each time: measured in docs/performance.md).
pub(crate) const READ_BUF_KEEP: usize = 64 * 1024;

/// One connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) addr: NodeAddr,
    /// The node's entry in the client's per-node counters.
    pub(crate) node: super::NodeId,
    pub(crate) state: ConnState,
    pub(crate) protocol: Protocol,
    pub(crate) read_buf: BytesMut,
    /// Whether a frame longer than [`READ_BUF_KEEP`] went through `read_buf` since it was last
    /// emptied: its allocation is that large, and is let go once the buffer is empty.
    pub(crate) read_buf_grown: bool,
    pub(crate) write_buf: BytesMut,
    pub(crate) inflight: VecDeque<Expect>,
    /// Sub-requests waiting for the handshake to finish.
    pub(crate) queued: VecDeque<Id>,
    /// A topology query to write as soon as the connection is open.
    pub(crate) queued_topology: Option<TopologyQuery>,
    /// Whether the connection is listed for the next `Transmit` (kept by the client).
    pub(crate) dirty: bool,
    /// When bytes last arrived on it (for the stall check).
    pub(crate) last_read: Option<Instant>,
    /// Whether `READONLY` was sent (and not undone by `READWRITE`).
    pub(crate) readonly: bool,
}

impl Conn {
    pub(crate) fn new(addr: NodeAddr, node: super::NodeId) -> Self {
        Self {
            addr,
            node,
            state: ConnState::Connecting,
            protocol: Protocol::Resp2,
            read_buf: BytesMut::new(),
            read_buf_grown: false,
            write_buf: BytesMut::new(),
            inflight: VecDeque::new(),
            queued: VecDeque::new(),
            queued_topology: None,
            dirty: false,
            last_read: None,
            readonly: false,
        }
    }

    /// Requests waiting on or written to this connection.
    pub(crate) fn load(&self) -> usize {
        self.inflight.len() + self.queued.len()
    }

    /// Writes one command and remembers what its reply is for.
    pub(crate) fn write<A: AsRef<[u8]>>(&mut self, args: &[A], expect: Expect) {
        encode_command(&mut self.write_buf, args);
        self.inflight.push_back(expect);
    }

    /// The connection is open: writes the handshake. `HELLO 3` carries the credentials and the
    /// name in one round trip; RESP2 servers get `AUTH` and `CLIENT SETNAME` instead. `replica`:
    /// whether the topology lists the node as a replica (see [`Conn::write_readonly_if_needed`]).
    pub(crate) fn start_handshake(&mut self, cfg: &ClientConfig, replica: bool) {
        self.state = ConnState::Handshaking;
        match cfg.protocol {
            Protocol::Resp3 => {
                self.protocol = Protocol::Resp3;
                let mut args: Vec<&str> = vec!["HELLO", "3"];
                if let Some(p) = &cfg.password {
                    args.extend(["AUTH", cfg.username.as_deref().unwrap_or("default"), p.expose()]);
                }
                if let Some(name) = &cfg.client_name {
                    args.extend(["SETNAME", name]);
                }
                self.write(&args, Expect::Hello);
            }
            Protocol::Resp2 => self.write_resp2_handshake(cfg, replica),
        }
    }

    /// After authentication: `READONLY` when reads may go to replicas and the topology lists
    /// the node as a replica (`replica`).
    ///
    /// Not on connections to primaries: a primary ignores `READONLY`, but a primary that was
    /// demoted in a failover the client has not heard of yet would then run, as a replica does
    /// for a `READONLY` connection, every command the server does not count as a write for its
    /// own master's slots, `EVAL` and `FCALL` included; a writing script's first write is then
    /// refused with `ERR ... non local key in a cluster node`, which names no node to go to.
    /// Without `READONLY` the demoted primary answers `MOVED`, which the client follows. When a
    /// node's role changes in the topology, [`Conn::sync_mode`] switches the mode. Not in
    /// [`Mode::Standalone`]: a standalone replica serves reads without it (and refuses it); in
    /// [`Mode::Auto`] a standalone node's refusal is ignored.
    pub(crate) fn write_readonly_if_needed(&mut self, cfg: &ClientConfig, replica: bool) {
        if cfg.read_from != ReadFrom::Primary && replica && cfg.mode != Mode::Standalone {
            self.write(&["READONLY"], Expect::ReadOnly);
            self.readonly = true;
        }
    }

    /// Past the handshake: sends `READONLY` or `READWRITE` when the node's role in the topology
    /// (`replica`) calls for the other mode. Returns whether it wrote. A connection still
    /// connecting or waiting for its `HELLO` reply is left alone: its handshake asks for the
    /// mode of the topology of that moment.
    pub(crate) fn sync_mode(&mut self, cfg: &ClientConfig, replica: bool) -> bool {
        let want = cfg.read_from != ReadFrom::Primary && replica;
        if want == self.readonly
            || self.state == ConnState::Connecting
            || self.inflight.iter().any(|e| *e == Expect::Hello)
        {
            return false;
        }
        self.write(&[if want { "READONLY" } else { "READWRITE" }], Expect::Mode);
        self.readonly = want;
        true
    }

    /// The RESP2 handshake: `AUTH` and `CLIENT SETNAME`, each only when configured.
    pub(crate) fn write_resp2_handshake(&mut self, cfg: &ClientConfig, replica: bool) {
        self.protocol = Protocol::Resp2;
        if let Some(p) = &cfg.password {
            match &cfg.username {
                Some(u) => self.write(&["AUTH", u, p.expose()], Expect::Auth),
                None => self.write(&["AUTH", p.expose()], Expect::Auth),
            }
        }
        if let Some(name) = &cfg.client_name {
            self.write(&["CLIENT", "SETNAME", name], Expect::SetName);
        }
        self.write_readonly_if_needed(cfg, replica);
    }

    /// Whether a handshake reply is still awaited.
    pub(crate) fn handshake_pending(&self) -> bool {
        self.inflight
            .iter()
            .any(|e| matches!(e, Expect::Hello | Expect::Auth | Expect::SetName | Expect::ReadOnly))
    }
}
