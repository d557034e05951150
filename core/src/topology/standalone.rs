//! A standalone node (cluster support disabled): one shard owning every slot, from `INFO`.
//!
//! Routing degenerates to one node: every slot maps to the primary, and read-only commands may
//! go to its replicas as [`ReadFrom`](crate::client::ReadFrom) says. Nothing else changes for
//! the rest of the client: fan-outs to "every primary" reach the one primary, `WAIT` counts the
//! replicas the shard lists, and no `MOVED` or `ASK` ever comes.
//!
//! `INFO` (its default sections) is read for:
//!
//! | field | section | use |
//! |---|---|---|
//! | `cluster_enabled` | Cluster | `1`: the node runs in cluster mode, [`TopologyError::ClusterEnabled`] |
//! | `run_id` | Server | the answering node's [`Node::id`] (a restart changes it) |
//! | `role` | Replication | `master`: the answering node is the primary; `slave`: its master is |
//! | `slaveN` | Replication | a primary's connected replicas: `ip=...,port=...,state=...` |
//! | `master_host`, `master_port`, `master_link_status` | Replication | a replica's primary |
//!
//! A primary's replica is [`Health::Online`] in state `online`, [`Health::Loading`] while it
//! syncs (`wait_bgsave`, `send_bulk`, ...); only online replicas serve reads. A replica that
//! disconnected is no longer listed (unlike a cluster, which lists a failed replica until it is
//! forgotten), so a `WAIT` after the next refresh no longer counts it. A replica that answers
//! describes a shard of its primary and itself only (`Online` while `master_link_status:up`,
//! else [`Health::Unknown`], which gets no reads); the client then asks the primary for the
//! other replicas.

use std::sync::Arc;

use super::node_info::{Health, Node, Role, SkipReason, SkippedNode};
use super::range::SlotRange;
use super::slot_map::Shard;
use super::{Topology, TopologyError};
use crate::{NodeAddr, SLOT_COUNT, Slot, Value};

/// Whether a server error is a standalone node's refusal of a cluster command (`ERR This
/// instance has cluster support disabled`, from `CLUSTER ...` and `READONLY`).
#[must_use]
pub fn is_cluster_disabled(error: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"cluster support disabled";
    error.windows(NEEDLE.len()).any(|w| w.eq_ignore_ascii_case(NEEDLE))
}

impl Topology {
    /// The topology of a standalone node: one shard owning all 16384 slots, `primary` its
    /// primary (its role is set to [`Role::Primary`]) and `replicas` its replicas (their role
    /// set to [`Role::Replica`]). [`is_standalone`](Self::is_standalone) is `true`.
    ///
    /// # Errors
    /// None in practice (one shard owns every slot); the signature matches the other
    /// constructors.
    pub fn standalone(primary: Node, replicas: Vec<Node>) -> Result<Self, TopologyError> {
        Self::standalone_with_skipped(primary, replicas, Vec::new())
    }

    fn standalone_with_skipped(
        mut primary: Node,
        mut replicas: Vec<Node>,
        skipped: Vec<SkippedNode>,
    ) -> Result<Self, TopologyError> {
        primary.role = Role::Primary;
        replicas.retain(|r| r.addr != primary.addr);
        for r in &mut replicas {
            r.role = Role::Replica;
        }
        replicas.sort_by(|a, b| a.addr.cmp(&b.addr));
        replicas.dedup_by(|a, b| a.addr == b.addr);
        let all = Slot::new(0)
            .zip(Slot::new(SLOT_COUNT - 1))
            .and_then(|(lo, hi)| SlotRange::new(lo, hi))
            .ok_or(TopologyError::Empty)?;
        let mut t = Self::build(vec![Shard { slots: vec![all], primary, replicas }], skipped)?;
        t.standalone = true;
        Ok(t)
    }

    /// Parses an `INFO` reply (the default sections, or at least `replication`) of the
    /// standalone node `origin` (see the [module docs](self)).
    ///
    /// # Errors
    /// [`TopologyError::Server`] for an error reply; [`TopologyError::ClusterEnabled`] when the
    /// node says `cluster_enabled:1`; [`TopologyError::BadField`] when the reply is not text or
    /// a replica's `master_port` is not a port; [`TopologyError::MissingField`] without `role`
    /// (or, on a replica, `master_host`/`master_port`).
    pub fn from_info_reply(reply: &Value, origin: &NodeAddr) -> Result<Self, TopologyError> {
        if let Some(e) = super::node_info::server_error(reply) {
            return Err(e);
        }
        let text = reply.as_bytes().ok_or(TopologyError::BadField { field: "INFO" })?;
        let text = String::from_utf8_lossy(text);
        let field = |name: &str| -> Option<&str> {
            text.lines().find_map(|l| l.trim_end_matches('\r').strip_prefix(name)?.strip_prefix(':'))
        };
        if field("cluster_enabled").is_some_and(|v| v.trim() == "1") {
            return Err(TopologyError::ClusterEnabled);
        }
        let role = field("role").ok_or(TopologyError::MissingField { field: "role" })?;
        let role = Role::parse(role.trim()).ok_or(TopologyError::BadField { field: "role" })?;
        let mut me = Node::from_addr(origin.clone());
        me.id = field("run_id").map(str::trim).filter(|s| !s.is_empty()).map(Arc::from);
        match role {
            Role::Primary => {
                let mut replicas = Vec::new();
                let mut skipped = Vec::new();
                for line in text.lines().map(|l| l.trim_end_matches('\r')) {
                    let Some((name, attrs)) = line.split_once(':') else { continue };
                    // `slaveN` (Redis, Valkey); `replicaN` should a server rename it.
                    let is_replica_line = ["slave", "replica"].iter().any(|p| {
                        name.strip_prefix(p)
                            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    });
                    if !is_replica_line {
                        continue;
                    }
                    match parse_replica(attrs) {
                        Ok(n) => replicas.push(n),
                        Err(reason) => skipped.push(SkippedNode { id: None, reason }),
                    }
                }
                Self::standalone_with_skipped(me, replicas, skipped)
            }
            Role::Replica => {
                let host = field("master_host")
                    .map(str::trim)
                    .filter(|h| !h.is_empty() && *h != "?")
                    .ok_or(TopologyError::MissingField { field: "master_host" })?;
                let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
                let port =
                    field("master_port").ok_or(TopologyError::MissingField { field: "master_port" })?;
                let port = port
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or(TopologyError::BadField { field: "master_port" })?;
                let link_up = field("master_link_status").is_some_and(|s| s.trim() == "up");
                me.health = if link_up { Health::Online } else { Health::Unknown };
                let primary = Node::from_addr(NodeAddr::new(host, port));
                Self::standalone_with_skipped(primary, vec![me], Vec::new())
            }
        }
    }

    /// Whether this is a standalone node's topology ([`Topology::standalone`],
    /// [`Topology::from_info_reply`]) rather than a cluster's.
    #[must_use]
    pub const fn is_standalone(&self) -> bool {
        self.standalone
    }
}

/// One `slaveN:` line's attributes: `ip=10.0.0.2,port=6380,state=online,offset=42,lag=0`.
fn parse_replica(attrs: &str) -> Result<Node, SkipReason> {
    let attr = |name: &str| {
        attrs
            .split(',')
            .find_map(|kv| kv.split_once('=').filter(|(k, _)| k.trim() == name).map(|(_, v)| v.trim()))
    };
    let ip = attr("ip").map(|h| h.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(h));
    let Some(ip) = ip.filter(|h| !h.is_empty() && *h != "?") else { return Err(SkipReason::UnknownEndpoint) };
    let Some(port) = attr("port").and_then(|p| p.parse::<u16>().ok()).filter(|&p| p != 0) else {
        return Err(SkipReason::NoUsablePort);
    };
    let mut node = Node::from_addr(NodeAddr::new(ip, port));
    node.role = Role::Replica;
    node.health = match attr("state") {
        Some("online") => Health::Online,
        // Syncing: `wait_bgsave`, `send_bulk`, and the states of newer servers.
        Some(_) => Health::Loading,
        None => Health::Unknown,
    };
    node.replication_offset = attr("offset").and_then(|o| o.parse().ok());
    Ok(node)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn origin() -> NodeAddr {
        NodeAddr::new("10.0.0.1", 6379)
    }

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::from(s.replace('\n', "\r\n")))
    }

    const PRIMARY: &str = "# Server
redis_version:7.2.4
run_id:4d9ba1b3c58bfa3e1d5e0a4d2c6b9c4f3b2a1f00
tcp_port:6379

# Replication
role:master
connected_slaves:3
slave0:ip=10.0.0.2,port=6380,state=online,offset=4242,lag=0
slave1:ip=10.0.0.3,port=6381,state=wait_bgsave,offset=0,lag=0
slave2:ip=::1,port=6382,state=online,offset=4242,lag=1
master_failover_state:no-failover
master_replid:0123
master_repl_offset:4242

# Cluster
cluster_enabled:0
";

    #[test]
    fn a_primary_owns_every_slot_with_its_replicas() {
        let t = Topology::from_info_reply(&bulk(PRIMARY), &origin()).unwrap();
        assert!(t.is_standalone() && t.is_fully_covered());
        assert_eq!(t.shards().len(), 1);
        let shard = &t.shards()[0];
        assert_eq!(shard.slot_count(), 16384);
        assert_eq!(shard.primary.addr, origin());
        assert_eq!(shard.primary.role, Role::Primary);
        assert_eq!(shard.primary.id.as_deref(), Some("4d9ba1b3c58bfa3e1d5e0a4d2c6b9c4f3b2a1f00"));
        let reps: Vec<(String, Health, Option<i64>)> =
            shard.replicas.iter().map(|r| (r.addr.to_string(), r.health, r.replication_offset)).collect();
        assert_eq!(
            reps,
            [
                ("10.0.0.2:6380".to_owned(), Health::Online, Some(4242)),
                ("10.0.0.3:6381".to_owned(), Health::Loading, Some(0)),
                ("[::1]:6382".to_owned(), Health::Online, Some(4242)),
            ]
        );
        assert!(shard.replicas.iter().all(|r| r.role == Role::Replica));
        for slot in [0, 1, 8000, 16383] {
            let s = Slot::new(slot).unwrap();
            assert_eq!(t.primary(s).map(|p| &p.addr), Some(&origin()));
            assert_eq!(t.replicas(s).len(), 3);
        }
        assert_eq!(t.primaries().count(), 1);
    }

    #[test]
    fn resp3_verbatim_text_and_bare_newlines_parse_alike() {
        let v = Value::Verbatim { format: Bytes::from_static(b"txt"), text: Bytes::from(PRIMARY) };
        assert_eq!(
            Topology::from_info_reply(&v, &origin()).unwrap(),
            Topology::from_info_reply(&bulk(PRIMARY), &origin()).unwrap()
        );
    }

    #[test]
    fn a_replica_names_its_primary_and_itself() {
        let info = "# Server\nrun_id:aaaa\n# Replication\nrole:slave\nmaster_host:10.0.0.1\nmaster_port:6379\n\
                    master_link_status:up\nslave_read_only:1\nconnected_slaves:0\n# Cluster\ncluster_enabled:0\n";
        let me = NodeAddr::new("10.0.0.2", 6380);
        let t = Topology::from_info_reply(&bulk(info), &me).unwrap();
        assert!(t.is_standalone());
        let shard = &t.shards()[0];
        assert_eq!(shard.primary.addr, NodeAddr::new("10.0.0.1", 6379));
        assert_eq!(shard.primary.id, None, "the primary's id is not in a replica's INFO");
        assert_eq!(shard.replicas.len(), 1);
        assert_eq!((shard.replicas[0].addr.clone(), shard.replicas[0].health), (me.clone(), Health::Online));
        assert_eq!(shard.replicas[0].id.as_deref(), Some("aaaa"));

        // Its link is down: it gets no reads (it may be far behind).
        let down = info.replace("master_link_status:up", "master_link_status:down");
        let t = Topology::from_info_reply(&bulk(&down), &me).unwrap();
        assert_eq!(t.shards()[0].replicas[0].health, Health::Unknown);
        assert!(!t.shards()[0].replicas[0].is_online());

        let no_port = info.replace("master_port:6379\n", "");
        assert_eq!(
            Topology::from_info_reply(&bulk(&no_port), &me),
            Err(TopologyError::MissingField { field: "master_port" })
        );
    }

    #[test]
    fn a_cluster_node_errors_and_odd_replies_are_refused() {
        let cluster = PRIMARY.replace("cluster_enabled:0", "cluster_enabled:1");
        assert_eq!(Topology::from_info_reply(&bulk(&cluster), &origin()), Err(TopologyError::ClusterEnabled));
        let e = Value::Error(Bytes::from_static(
            b"NOPERM this user has no permissions to run the 'info' command",
        ));
        assert!(
            matches!(Topology::from_info_reply(&e, &origin()), Err(TopologyError::Server(s)) if s.starts_with("NOPERM"))
        );
        assert_eq!(
            Topology::from_info_reply(&Value::Int(1), &origin()),
            Err(TopologyError::BadField { field: "INFO" })
        );
        assert_eq!(
            Topology::from_info_reply(&bulk("# Server\nredis_version:7\n"), &origin()),
            Err(TopologyError::MissingField { field: "role" })
        );
        assert_eq!(
            Topology::from_info_reply(&bulk("role:sentinel\n"), &origin()),
            Err(TopologyError::BadField { field: "role" })
        );
    }

    #[test]
    fn unusable_replicas_are_skipped_and_the_primary_is_never_its_own_replica() {
        let info = "role:master\nslave0:ip=,port=6380,state=online\nslave1:ip=10.0.0.3,port=0,state=online\n\
                    slave2:ip=10.0.0.1,port=6379,state=online\nslave3:ip=10.0.0.4,port=6383\nslaves:x\n\
                    slave_read_only:1\nreplica4:ip=10.0.0.4,port=6383,state=online\n";
        let t = Topology::from_info_reply(&bulk(info), &origin()).unwrap();
        let shard = &t.shards()[0];
        assert_eq!(shard.replicas.len(), 1, "{:?}", shard.replicas);
        assert_eq!(shard.replicas[0].addr, NodeAddr::new("10.0.0.4", 6383));
        assert_eq!(shard.replicas[0].health, Health::Unknown, "no state: not trusted with reads");
        let reasons: Vec<SkipReason> = t.skipped().iter().map(|s| s.reason).collect();
        assert_eq!(reasons, [SkipReason::UnknownEndpoint, SkipReason::NoUsablePort]);
    }

    #[test]
    fn a_standalone_topology_differs_from_a_cluster_of_the_same_shape() {
        let primary = Node::from_addr(origin());
        let standalone = Topology::standalone(primary.clone(), Vec::new()).unwrap();
        let all = SlotRange::new(Slot::new(0).unwrap(), Slot::new(SLOT_COUNT - 1).unwrap()).unwrap();
        let cluster =
            Topology::from_shards(vec![Shard { slots: vec![all], primary, replicas: Vec::new() }]).unwrap();
        assert!(!cluster.is_standalone());
        assert_ne!(standalone, cluster);
        assert!(standalone.diff(&cluster).is_empty(), "same owners: no slot moved");
    }

    #[test]
    fn cluster_support_disabled_is_recognised() {
        assert!(is_cluster_disabled(b"ERR This instance has cluster support disabled"));
        assert!(is_cluster_disabled(b"ERR This instance has CLUSTER support disabled"));
        assert!(!is_cluster_disabled(b"ERR unknown command 'CLUSTER'"));
        assert!(!is_cluster_disabled(b"NOPERM"));
    }
}
