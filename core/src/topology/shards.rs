//! `CLUSTER SHARDS` (Valkey 7.0+), in its RESP3 (maps) and RESP2 (flat key/value arrays) shapes.
//!
//! The reply is an array of shards; each shard has `slots` (a flat list of inclusive start/end
//! pairs) and `nodes` (one map per node with `id`, `port` and/or `tls-port`, `ip`, `endpoint`,
//! optional `hostname`, `role`, `replication-offset`, `health` and, from Valkey 9.1,
//! `availability-zone`). Unknown fields are ignored.

use std::sync::Arc;

use super::node_info::{self, Endpoint, Health, Node, Role, SkipReason, SkippedNode};
use super::range::SlotRange;
use super::slot_map::Shard;
use super::{Topology, TopologyError};
use crate::{NodeAddr, Value};

/// A node entry: usable, or skipped for a reason.
type Parsed = Result<Node, SkippedNode>;

impl Topology {
    /// Parses a `CLUSTER SHARDS` reply.
    ///
    /// `origin` is the node that answered: a NULL or empty `endpoint` means "its host, with the
    /// port from the reply". With `tls`, a node's `tls-port` is used, or its `port` when it
    /// announces no `tls-port`; without `tls`, only `port` is used and a TLS-only node is skipped
    /// ([`SkipReason::NoUsablePort`]). Endpoint `"?"` skips the node
    /// ([`SkipReason::UnknownEndpoint`]).
    ///
    /// A shard keeps the primary with the best health (several primaries can be listed for a
    /// moment during failover); a failed primary is kept, flagged [`Health::Failed`], and
    /// [`Topology::primary`] reports no writable owner for its slots until the cluster promotes
    /// a replica. A shard with no usable primary is dropped: its slots stay unowned and its
    /// replicas are listed in [`Topology::skipped`] with [`SkipReason::NoPrimary`].
    pub fn from_shards_reply(reply: &Value, origin: &NodeAddr, tls: bool) -> Result<Self, TopologyError> {
        if let Some(e) = node_info::server_error(reply) {
            return Err(e);
        }
        let entries = reply.as_array().ok_or(TopologyError::NotAnArray { what: "CLUSTER SHARDS reply" })?;
        let origin_host: Arc<str> = Arc::from(origin.host());
        let mut shards = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for entry in entries {
            if let Some(shard) = parse_shard(entry, origin, &origin_host, tls, &mut skipped)? {
                shards.push(shard);
            }
        }
        Self::build(shards, skipped)
    }
}

fn parse_shard(
    entry: &Value,
    origin: &NodeAddr,
    origin_host: &Arc<str>,
    tls: bool,
    skipped: &mut Vec<SkippedNode>,
) -> Result<Option<Shard>, TopologyError> {
    if !matches!(entry, Value::Map(_) | Value::Array(_)) {
        return Err(TopologyError::NotAMap { what: "shard" });
    }
    let slots_v = entry.field("slots").ok_or(TopologyError::MissingField { field: "slots" })?;
    let flat = slots_v.as_array().ok_or(TopologyError::NotAnArray { what: "slots" })?;
    let mut pairs = flat.chunks_exact(2);
    let mut slots = Vec::with_capacity(flat.len() / 2);
    for pair in pairs.by_ref() {
        if let [s, e] = pair {
            slots.push(SlotRange::parse(s, e)?);
        }
    }
    if let [odd] = pairs.remainder() {
        return Err(TopologyError::BadSlotRange { start: odd.as_int().unwrap_or(-1), end: -1 });
    }
    let nodes_v = entry.field("nodes").ok_or(TopologyError::MissingField { field: "nodes" })?;
    let nodes = nodes_v.as_array().ok_or(TopologyError::NotAnArray { what: "nodes" })?;
    let mut primaries = Vec::new();
    let mut replicas = Vec::new();
    for n in nodes {
        match parse_node(n, origin_host, tls)? {
            Ok(node) if node.role == Role::Primary => primaries.push(node),
            Ok(node) => replicas.push(node),
            Err(skip) => skipped.push(skip),
        }
    }
    // Best health first; then the node that answered (right after a failover, before the old
    // primary is marked failed, the promoted replica lists both as primaries of its shard, and
    // it knows its own role best); ties broken by address so that node order in the reply does
    // not matter.
    let rank = |n: &Node| (health_rank(n.health), n.addr != *origin);
    primaries.sort_by(|a, b| (rank(a), a.sort_key()).cmp(&(rank(b), b.sort_key())));
    let mut primaries = primaries.into_iter();
    let Some(primary) = primaries.next() else {
        skipped.extend(replicas.into_iter().map(|r| SkippedNode { id: r.id, reason: SkipReason::NoPrimary }));
        return Ok(None);
    };
    skipped.extend(primaries.map(|p| SkippedNode { id: p.id, reason: SkipReason::ExtraPrimary }));
    Ok(Some(Shard { slots, primary, replicas }))
}

const fn health_rank(h: Health) -> u8 {
    match h {
        Health::Online => 0,
        Health::Loading => 1,
        Health::Unknown => 2,
        Health::Failed => 3,
    }
}

fn parse_node(v: &Value, origin_host: &Arc<str>, tls: bool) -> Result<Parsed, TopologyError> {
    if !matches!(v, Value::Map(_) | Value::Array(_)) {
        return Err(TopologyError::NotAMap { what: "node" });
    }
    let id = node_info::opt_text(v.field("id"), "id")?;
    let skip = |reason| Ok(Err(SkippedNode { id: id.clone(), reason }));

    let port = v.field("port").map(node_info::parse_port).transpose()?.filter(|&p| p != 0);
    let tls_port = v.field("tls-port").map(node_info::parse_port).transpose()?.filter(|&p| p != 0);
    if port.is_none() && tls_port.is_none() {
        return Err(TopologyError::MissingField { field: "port" });
    }
    let chosen = if tls { tls_port.or(port) } else { port };
    let Some(port) = chosen else { return skip(SkipReason::NoUsablePort) };

    let endpoint = match v.field("endpoint") {
        Some(e) => node_info::parse_endpoint(e)?,
        // Servers always send `endpoint`; if one does not, the `ip` is the next best thing.
        None => match node_info::opt_text(v.field("ip"), "ip")? {
            Some(ip) => Endpoint::Host(ip),
            None => Endpoint::Origin,
        },
    };
    let Some(addr) = node_info::resolve(endpoint, port, origin_host) else {
        return skip(SkipReason::UnknownEndpoint);
    };

    let role_v = v.field("role").ok_or(TopologyError::MissingField { field: "role" })?;
    let role_s = role_v.as_str().ok_or(TopologyError::BadField { field: "role" })?;
    let Some(role) = Role::parse(role_s) else { return skip(SkipReason::UnknownRole) };

    let health = match v.field("health") {
        None => Health::Online,
        Some(h) => Health::parse(h.as_str().ok_or(TopologyError::BadField { field: "health" })?),
    };
    let replication_offset = match v.field("replication-offset") {
        None => None,
        Some(o) => Some(o.as_int().ok_or(TopologyError::BadField { field: "replication-offset" })?),
    };
    Ok(Ok(Node {
        id,
        addr,
        role,
        health,
        replication_offset,
        availability_zone: node_info::opt_text(v.field("availability-zone"), "availability-zone")?,
        hostname: node_info::opt_text(v.field("hostname"), "hostname")?,
    }))
}
