//! Reading what the cluster says about itself: `CLUSTER NODES`, `CLUSTER SHARDS`, `INFO` fields,
//! `INFO commandstats`.

use std::collections::BTreeMap;

use slotcache_core::{NodeAddr, Value};

use crate::{Error, Result};

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A primary (`master`), serving slots.
    Master,
    /// A replica (`slave` in `INFO`, `replica` in `CLUSTER SHARDS`).
    Replica,
}

/// The value of `name:` in an `INFO` or `CLUSTER INFO` text.
#[must_use]
pub fn info_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

/// One command's counters in `INFO commandstats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandStats {
    /// Times it ran (`calls=`).
    pub calls: u64,
    /// Times it was refused before running (`rejected_calls=`: `MOVED`, `NOPERM`, ...; 0 on
    /// servers that do not report it).
    pub rejected_calls: u64,
    /// Times it ran and failed (`failed_calls=`; 0 on servers that do not report it).
    pub failed_calls: u64,
}

/// Parses `INFO commandstats`: every command's counters, by its lower-case name as the server
/// writes it (`get`, `cluster|shards`). A command never run is absent.
///
/// # Errors
/// A `cmdstat_` line without a readable `calls=`.
pub fn parse_commandstats(text: &str) -> Result<BTreeMap<String, CommandStats>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cmdstat_") else { continue };
        let Some((name, fields)) = rest.split_once(':') else { continue };
        let field = |key: &str| {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|n| n.trim().parse().ok())
        };
        let calls = field("calls").ok_or_else(|| Error::new(format!("cannot read calls in {line:?}")))?;
        let stats = CommandStats {
            calls,
            rejected_calls: field("rejected_calls").unwrap_or(0),
            failed_calls: field("failed_calls").unwrap_or(0),
        };
        out.insert(name.to_owned(), stats);
    }
    Ok(out)
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// The node id (40 hex characters).
    pub id: String,
    /// The client address (`ip:port`; the bus port and hostname are dropped).
    pub addr: Option<NodeAddr>,
    /// Flags: `myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, `nofailover`...
    pub flags: Vec<String>,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    /// Whether the cluster-bus link is `connected`.
    pub connected: bool,
    /// Slot ranges served (inclusive); migrating/importing markers are left out.
    pub slots: Vec<(u16, u16)>,
}

impl NodeEntry {
    /// Whether `flag` is among the flags.
    #[must_use]
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The role the line reports.
    #[must_use]
    pub fn role(&self) -> Role {
        if self.has_flag("master") { Role::Master } else { Role::Replica }
    }

    /// Whether the line is flagged as failing or not (yet) usable: `fail`, `fail?`, `handshake`,
    /// `noaddr`.
    #[must_use]
    pub fn troubled(&self) -> bool {
        self.flags.iter().any(|f| matches!(f.as_str(), "fail" | "fail?" | "handshake" | "noaddr"))
    }

    /// Whether the node serves `slot`.
    #[must_use]
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    }

    /// How many slots it serves.
    #[must_use]
    pub fn slot_count(&self) -> usize {
        self.slots.iter().map(|&(lo, hi)| usize::from(hi - lo) + 1).sum()
    }
}

/// Parses the text of `CLUSTER NODES`.
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<NodeEntry>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 8 {
            return Err(Error::new(format!("short CLUSTER NODES line: {line:?}")));
        }
        let addr_part = f[1].split([',', '@']).next().unwrap_or("");
        let mut slots = Vec::new();
        for s in &f[8..] {
            if s.starts_with('[') {
                continue;
            }
            let (lo, hi) = s.split_once('-').unwrap_or((s, s));
            let (Ok(lo), Ok(hi)) = (lo.parse(), hi.parse()) else {
                return Err(Error::new(format!("bad slot range {s:?} in {line:?}")));
            };
            slots.push((lo, hi));
        }
        out.push(NodeEntry {
            id: f[0].to_owned(),
            addr: NodeAddr::parse(addr_part).filter(|a| a.port() != 0),
            flags: f[2].split(',').map(str::to_owned).collect(),
            master_id: (f[3] != "-").then(|| f[3].to_owned()),
            connected: f[7] == "connected",
            slots,
        });
    }
    Ok(out)
}

/// One node of a `CLUSTER SHARDS` shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardNode {
    /// The node id.
    pub id: String,
    /// The plain-text port, if the node has one.
    pub port: Option<u16>,
    /// The TLS port, if the node has one.
    pub tls_port: Option<u16>,
    /// The `ip` field.
    pub ip: String,
    /// The `endpoint` field (what clients should connect to).
    pub endpoint: String,
    /// `master` or `replica`.
    pub role: Role,
    /// `online`, `failed` or `loading`.
    pub health: String,
    /// The `replication-offset` field.
    pub replication_offset: i64,
}

/// One shard of `CLUSTER SHARDS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Slot ranges (inclusive).
    pub slots: Vec<(u16, u16)>,
    /// The master and its replicas.
    pub nodes: Vec<ShardNode>,
}

impl Shard {
    /// The master of this shard. After a failover the failed old master may still be listed
    /// as a `master` with health `failed` until it rejoins as a replica: an online master is
    /// preferred.
    #[must_use]
    pub fn master(&self) -> Option<&ShardNode> {
        let mut masters = self.nodes.iter().filter(|n| n.role == Role::Master);
        let first = masters.clone().next();
        masters.find(|n| n.health == "online").or(first)
    }

    /// Whether this shard serves `slot`.
    #[must_use]
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    }
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("").to_owned()
}

/// Parses a `CLUSTER SHARDS` reply (RESP2 flat arrays or RESP3 maps).
pub fn parse_cluster_shards(v: &Value) -> Result<Vec<Shard>> {
    let bad = |what: &str| Error::new(format!("CLUSTER SHARDS: {what} in {}", crate::resp::display(v)));
    let mut out = Vec::new();
    for shard in v.as_array().ok_or_else(|| bad("not an array"))? {
        let slots_v = shard.field("slots").and_then(Value::as_array).ok_or_else(|| bad("no slots"))?;
        let nums: Vec<u16> = slots_v
            .iter()
            .map(|s| s.as_int().and_then(|i| u16::try_from(i).ok()).ok_or_else(|| bad("bad slot")))
            .collect::<Result<_>>()?;
        let slots = nums.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        let mut nodes = Vec::new();
        for n in shard.field("nodes").and_then(Value::as_array).ok_or_else(|| bad("no nodes"))? {
            let port = |name| n.field(name).and_then(Value::as_int).and_then(|p| u16::try_from(p).ok());
            nodes.push(ShardNode {
                id: text(n.field("id")),
                port: port("port"),
                tls_port: port("tls-port"),
                ip: text(n.field("ip")),
                endpoint: text(n.field("endpoint")),
                role: if text(n.field("role")) == "master" { Role::Master } else { Role::Replica },
                health: text(n.field("health")),
                replication_offset: n.field("replication-offset").and_then(Value::as_int).unwrap_or(0),
            });
        }
        out.push(Shard { slots, nodes });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes_lines() {
        let text = "\
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,host1 myself,master - 0 0 1 connected 0-5460 7000 [93->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 slave,fail? e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238316232 2 disconnected
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f :0@0 master,noaddr - 0 0 3 connected
";
        let n = parse_cluster_nodes(text).unwrap();
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].addr, Some(NodeAddr::new("127.0.0.1", 30001)));
        assert!(n[0].has_flag("myself") && n[0].role() == Role::Master && n[0].connected);
        assert_eq!(n[0].slots, vec![(0, 5460), (7000, 7000)]);
        assert_eq!(n[0].slot_count(), 5462);
        assert!(n[0].serves(7000) && !n[0].serves(93 + 10_000));
        assert_eq!(n[1].master_id.as_deref(), Some(n[0].id.as_str()));
        assert!(n[1].troubled() && !n[1].connected && n[1].role() == Role::Replica);
        assert_eq!(n[2].addr, None);
        assert!(parse_cluster_nodes("abc def").is_err());
    }

    #[test]
    fn reads_info_fields() {
        let t = "# Replication\r\nrole:slave\r\nmaster_port:7000\r\nmaster_link_status:up\r\n";
        assert_eq!(info_field(t, "role"), Some("slave"));
        assert_eq!(info_field(t, "master_port"), Some("7000"));
        assert_eq!(info_field(t, "master"), None);
    }

    #[test]
    fn parses_commandstats() {
        let t = "# Commandstats\r\ncmdstat_get:calls=12,usec=30,usec_per_call=2.50,rejected_calls=1,failed_calls=2\r\n\
                 cmdstat_cluster|shards:calls=3,usec=9,usec_per_call=3.00\r\n";
        let s = parse_commandstats(t).unwrap();
        assert_eq!(s["get"], CommandStats { calls: 12, rejected_calls: 1, failed_calls: 2 });
        assert_eq!(s["cluster|shards"], CommandStats { calls: 3, ..CommandStats::default() });
        assert!(!s.contains_key("set"));
        assert!(parse_commandstats("cmdstat_get:usec=3\r\n").is_err());
    }
}
