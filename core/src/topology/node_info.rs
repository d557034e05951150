//! Nodes as the topology reports them, and the field rules shared by both reply parsers.

use std::sync::Arc;

use super::TopologyError;
use crate::{NodeAddr, Value};

/// A node's replication role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Owns the shard's slots and takes writes (`master` on the wire).
    Primary,
    /// Replicates a primary; serves reads after `READONLY`.
    Replica,
}

impl Role {
    /// Parses the wire spelling: `master`/`primary` or `replica`/`slave` (ASCII case-insensitive).
    /// Anything else is `None`; the parsers then skip the node with [`SkipReason::UnknownRole`].
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("master") || s.eq_ignore_ascii_case("primary") {
            Some(Self::Primary)
        } else if s.eq_ignore_ascii_case("replica") || s.eq_ignore_ascii_case("slave") {
            Some(Self::Replica)
        } else {
            None
        }
    }
}

/// A node's health as `CLUSTER SHARDS` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Health {
    /// Serving (`online`). Also assumed when the reply carries no health (`CLUSTER SLOTS`).
    Online,
    /// A replica that has not finished its initial sync (`loading`): not eligible yet.
    Loading,
    /// The cluster flagged the node as failed (`fail`, which the server sends, or `failed`, which
    /// the documentation shows).
    Failed,
    /// A value this version does not know. Treated as not online: no reads are routed to such a
    /// replica, but a primary in this state still owns its slots.
    Unknown,
}

impl Health {
    /// Parses the wire spelling (ASCII case-insensitive); unknown strings give
    /// [`Health::Unknown`].
    #[must_use]
    pub fn parse(s: &str) -> Self {
        if s.eq_ignore_ascii_case("online") {
            Self::Online
        } else if s.eq_ignore_ascii_case("loading") {
            Self::Loading
        } else if s.eq_ignore_ascii_case("fail") || s.eq_ignore_ascii_case("failed") {
            Self::Failed
        } else {
            Self::Unknown
        }
    }
}

/// One node of a shard.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// The 40-character node id, when the reply carries one (a node learnt from a `MOVED` has
    /// none until the next refresh).
    pub id: Option<Arc<str>>,
    /// Where to connect: the announced endpoint (or the answering node's host when the endpoint
    /// is NULL or empty) and the port for the chosen transport.
    pub addr: NodeAddr,
    /// Primary or replica.
    pub role: Role,
    /// Health as reported ([`Health::Online`] when the reply has no health field).
    pub health: Health,
    /// Replication offset (`CLUSTER SHARDS` only), usable to prefer fresher replicas.
    pub replication_offset: Option<i64>,
    /// Availability zone (Valkey 9.1 and later), for AZ-affine reads.
    pub availability_zone: Option<Arc<str>>,
    /// The announced hostname, if any (`hostname` in `CLUSTER SHARDS`, or in the `CLUSTER SLOTS`
    /// metadata when the endpoint is not the hostname); a TLS server name when the endpoint is an
    /// IP address.
    pub hostname: Option<Arc<str>>,
}

impl Node {
    /// A node known only by its address: an online primary with no id and no metadata. This is
    /// what [`Topology::patch_slot`](super::Topology::patch_slot) records for a `MOVED` target it
    /// has not seen before.
    #[must_use]
    pub const fn from_addr(addr: NodeAddr) -> Self {
        Self {
            id: None,
            addr,
            role: Role::Primary,
            health: Health::Online,
            replication_offset: None,
            availability_zone: None,
            hostname: None,
        }
    }

    /// Whether traffic may be sent to this node: its health is [`Health::Online`].
    #[must_use]
    pub fn is_online(&self) -> bool {
        self.health == Health::Online
    }

    /// Whether both describe the same server: same address, and the same id unless one of them
    /// has none. This is the identity used for "the owner of a slot changed".
    #[must_use]
    pub fn same_server(&self, other: &Self) -> bool {
        self.addr == other.addr
            && match (&self.id, &other.id) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// Equality for canonical comparison: every field except `replication_offset`, which moves
    /// with every write and says nothing about the layout.
    pub(crate) fn same_layout(&self, other: &Self) -> bool {
        self.id == other.id
            && self.addr == other.addr
            && self.role == other.role
            && self.health == other.health
            && self.availability_zone == other.availability_zone
            && self.hostname == other.hostname
    }

    /// Canonical sort key: address, then id.
    pub(crate) fn sort_key(&self) -> (&NodeAddr, Option<&str>) {
        (&self.addr, self.id.as_deref())
    }
}

/// Why a node listed in a reply was left out of the [`Topology`](super::Topology).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// The endpoint is `"?"`: the node announces hostnames but has none configured. The
    /// specification says to treat it as an unknown node.
    UnknownEndpoint,
    /// The node advertises no port the client can use: a plain-text client and a TLS-only node
    /// (only `tls-port`), or a `CLUSTER SLOTS` port of 0.
    NoUsablePort,
    /// The role is neither primary nor replica.
    UnknownRole,
    /// A replica whose shard has no usable primary: its shard was dropped and its slots are
    /// unowned until a later refresh.
    NoPrimary,
    /// A second primary in one shard (a transient state during failover); the healthiest one
    /// was kept.
    ExtraPrimary,
}

/// A node the parser left out, for logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedNode {
    /// The node id, when the reply had one.
    pub id: Option<Arc<str>>,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// Where an endpoint field points.
pub(crate) enum Endpoint {
    /// Connect here.
    Host(Arc<str>),
    /// NULL or `""`: the host of the node that answered.
    Origin,
    /// `"?"`: unknown node.
    Unknown,
}

/// Reads an endpoint value per the specification: NULL or `""` mean "the node that answered",
/// `"?"` means unknown. Brackets around an IPv6 address are removed first, so `"[]"` is the
/// node that answered and `"[?]"` is unknown, as in a `MOVED` reply; a host that still holds a
/// bracket (`"[[::1]]"`, `"x]"`) cannot be dialled and is unknown too.
pub(crate) fn parse_endpoint(v: &Value) -> Result<Endpoint, TopologyError> {
    if v.is_nil() {
        return Ok(Endpoint::Origin);
    }
    let s = v.as_str().ok_or(TopologyError::BadField { field: "endpoint" })?;
    let host = s.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(s);
    Ok(match host {
        "" => Endpoint::Origin,
        "?" => Endpoint::Unknown,
        h if h.contains(['[', ']']) => Endpoint::Unknown,
        h => Endpoint::Host(Arc::from(h)),
    })
}

/// Reads a port: an integer in `0..=65535` (0 meaning "none").
pub(crate) fn parse_port(v: &Value) -> Result<u16, TopologyError> {
    let n = v.as_int().ok_or(TopologyError::BadPort { port: -1 })?;
    u16::try_from(n).map_err(|_| TopologyError::BadPort { port: n })
}

/// Reads an optional text field; empty text counts as absent. A non-text value is an error.
pub(crate) fn opt_text(v: Option<&Value>, field: &'static str) -> Result<Option<Arc<str>>, TopologyError> {
    match v {
        None => Ok(None),
        Some(v) if v.is_nil() => Ok(None),
        Some(v) => {
            let s = v.as_str().ok_or(TopologyError::BadField { field })?;
            Ok(if s.is_empty() { None } else { Some(Arc::from(s)) })
        }
    }
}

/// Resolves an endpoint and port into an address, using `origin_host` for NULL/empty endpoints.
pub(crate) fn resolve(endpoint: Endpoint, port: u16, origin_host: &Arc<str>) -> Option<NodeAddr> {
    match endpoint {
        Endpoint::Host(h) => Some(NodeAddr::new(h, port)),
        Endpoint::Origin => Some(NodeAddr::new(Arc::clone(origin_host), port)),
        Endpoint::Unknown => None,
    }
}

/// The text of a server error reply, lossily decoded and truncated to 200 bytes.
pub(crate) fn server_error(v: &Value) -> Option<TopologyError> {
    match v {
        Value::Error(b) => {
            let text = String::from_utf8_lossy(b.get(..b.len().min(200)).unwrap_or_default());
            Some(TopologyError::Server(text.into_owned()))
        }
        _ => None,
    }
}
