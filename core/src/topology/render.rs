//! Rendering a [`Topology`] as a `CLUSTER SHARDS` reply, for simulated clusters and tests.

use bytes::Bytes;

use super::Topology;
use super::node_info::{Health, Node, Role};
use crate::{Protocol, Value};

impl Topology {
    /// The `CLUSTER SHARDS` reply a server of this topology would send: maps in RESP3, flat
    /// key/value arrays in RESP2, each node's port under `tls-port` when `tls` is set and under
    /// `port` otherwise, and its address host as `endpoint` and `ip`. Parsing the result with
    /// the same `tls` gives back an equal topology (offsets included), except that a node whose
    /// host is empty comes back with the origin's host (an empty endpoint means "the node that
    /// answered"). Skipped nodes are not rendered.
    #[must_use]
    pub fn to_shards_reply(&self, protocol: Protocol, tls: bool) -> Value {
        let shards = self.shards().iter().map(|shard| {
            let slots =
                shard.slots.iter().flat_map(|r| [r.start(), r.end()]).map(|s| Value::Int(i64::from(s.get())));
            let nodes = shard.nodes().map(|n| node(n, protocol, tls)).collect();
            map(protocol, vec![("slots", Value::Array(slots.collect())), ("nodes", Value::Array(nodes))])
        });
        Value::Array(shards.collect())
    }
}

fn text(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn map(protocol: Protocol, pairs: Vec<(&'static str, Value)>) -> Value {
    let key = |k: &'static str| Value::Bulk(Bytes::from_static(k.as_bytes()));
    match protocol {
        Protocol::Resp3 => Value::Map(pairs.into_iter().map(|(k, v)| (key(k), v)).collect()),
        Protocol::Resp2 => Value::Array(pairs.into_iter().flat_map(|(k, v)| [key(k), v]).collect()),
    }
}

fn node(n: &Node, protocol: Protocol, tls: bool) -> Value {
    let mut f = Vec::with_capacity(10);
    if let Some(id) = &n.id {
        f.push(("id", text(id)));
    }
    f.push((if tls { "tls-port" } else { "port" }, Value::Int(i64::from(n.addr.port()))));
    f.push(("ip", text(n.addr.host())));
    f.push(("endpoint", text(n.addr.host())));
    if let Some(h) = &n.hostname {
        f.push(("hostname", text(h)));
    }
    f.push(("role", text(if n.role == Role::Primary { "master" } else { "replica" })));
    if let Some(o) = n.replication_offset {
        f.push(("replication-offset", Value::Int(o)));
    }
    let health = match n.health {
        Health::Online => "online",
        Health::Loading => "loading",
        Health::Failed => "fail",
        Health::Unknown => "unknown",
    };
    f.push(("health", text(health)));
    if let Some(az) = &n.availability_zone {
        f.push(("availability-zone", text(az)));
    }
    map(protocol, f)
}
