//! `CLUSTER SLOTS`, the fallback for servers without `CLUSTER SHARDS` (before 7.0).
//!
//! The reply is an array of entries `[start, end, primary, replica, ...]`; each node is
//! `[endpoint, port, id, metadata]`, where the metadata is a map (a flat array in RESP2) that may
//! hold `ip`, `hostname` and, from Valkey 9.1, `availability-zone`. Elements after these are
//! ignored, and old servers may send only endpoint and port. A primary owning several ranges is
//! repeated once per range; entries are grouped back into one shard per primary.
//!
//! The server picks the port for the transport of the asking connection, lists only replicas
//! that are not failed and have synced, and reports no health or offsets: every node is
//! [`Health::Online`] with no replication offset.

use std::collections::HashMap;
use std::sync::Arc;

use super::node_info::{self, Health, Node, Role, SkipReason, SkippedNode};
use super::range::SlotRange;
use super::slot_map::Shard;
use super::{Topology, TopologyError};
use crate::{NodeAddr, Value};

impl Topology {
    /// Parses a `CLUSTER SLOTS` reply (RESP2 or RESP3).
    ///
    /// `origin` is the node that answered: a NULL or empty endpoint means its host with the port
    /// from the reply. The server reports the port for the transport of the asking connection
    /// (the TLS port to a TLS client), so there is no `tls` choice to make here. Endpoint `"?"`
    /// or port 0 makes a node unusable; when that node is an entry's primary, the entry's slots
    /// stay unowned and its replicas are skipped. Replicas a server lists are online (it omits
    /// failed and unsynced ones); nodes carry no health or offset beyond that.
    pub fn from_slots_reply(reply: &Value, origin: &NodeAddr) -> Result<Self, TopologyError> {
        if let Some(e) = node_info::server_error(reply) {
            return Err(e);
        }
        let entries = reply.as_array().ok_or(TopologyError::NotAnArray { what: "CLUSTER SLOTS reply" })?;
        let origin_host: Arc<str> = Arc::from(origin.host());
        let mut shards: Vec<Shard> = Vec::new();
        let mut index: HashMap<(NodeAddr, Option<Arc<str>>), usize> = HashMap::new();
        let mut skipped = Vec::new();
        for entry in entries {
            let items = entry.as_array().ok_or(TopologyError::NotAnArray { what: "slot entry" })?;
            let (range, primary_v, replica_vs) = match items {
                [start, end, primary, replicas @ ..] => (SlotRange::parse(start, end)?, primary, replicas),
                [start, end] => {
                    // A bad range is the more useful report when there is one.
                    SlotRange::parse(start, end)?;
                    return Err(TopologyError::MissingField { field: "primary" });
                }
                _ => return Err(TopologyError::BadSlotRange { start: -1, end: -1 }),
            };
            let mut replicas = Vec::with_capacity(replica_vs.len());
            for r in replica_vs {
                match parse_node(r, Role::Replica, &origin_host)? {
                    Ok(n) => replicas.push(n),
                    Err(s) => skipped.push(s),
                }
            }
            let primary = match parse_node(primary_v, Role::Primary, &origin_host)? {
                Ok(p) => p,
                Err(s) => {
                    skipped.push(s);
                    skipped.extend(
                        replicas.into_iter().map(|r| SkippedNode { id: r.id, reason: SkipReason::NoPrimary }),
                    );
                    continue;
                }
            };
            let key = (primary.addr.clone(), primary.id.clone());
            match index.get(&key).and_then(|&i| shards.get_mut(i)) {
                Some(shard) => {
                    shard.slots.push(range);
                    for r in replicas {
                        if !shard.replicas.iter().any(|x| x.addr == r.addr) {
                            shard.replicas.push(r);
                        }
                    }
                }
                None => {
                    index.insert(key, shards.len());
                    shards.push(Shard { slots: vec![range], primary, replicas });
                }
            }
        }
        Self::build(shards, skipped)
    }
}

fn parse_node(
    v: &Value,
    role: Role,
    origin_host: &Arc<str>,
) -> Result<Result<Node, SkippedNode>, TopologyError> {
    let items = v.as_array().ok_or(TopologyError::NotAnArray { what: "node" })?;
    let [endpoint_v, port_v, rest @ ..] = items else {
        return Err(TopologyError::MissingField { field: "port" });
    };
    let id = node_info::opt_text(rest.first(), "id")?;
    let meta = rest.get(1).filter(|m| matches!(m, Value::Map(_) | Value::Array(_)));
    let port = node_info::parse_port(port_v)?;
    let endpoint = node_info::parse_endpoint(endpoint_v)?;
    if port == 0 {
        return Ok(Err(SkippedNode { id, reason: SkipReason::NoUsablePort }));
    }
    let Some(addr) = node_info::resolve(endpoint, port, origin_host) else {
        return Ok(Err(SkippedNode { id, reason: SkipReason::UnknownEndpoint }));
    };
    let field = |name: &'static str| node_info::opt_text(meta.and_then(|m| m.field(name)), name);
    Ok(Ok(Node {
        id,
        addr,
        role,
        health: Health::Online,
        replication_offset: None,
        availability_zone: field("availability-zone")?,
        hostname: field("hostname")?,
    }))
}
