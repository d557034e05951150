//! Reading a cluster's layout from seed addresses (`CLUSTER SHARDS` over a plain connection).

use anyhow::{Context, Result, bail};
use slotcache_core::NodeAddr;
use slotcache_tests::{Conn, Role, Shard, ShardNode, topo};

/// The shards of a cluster, as one node reported them.
pub(crate) struct Topology {
    /// The shards.
    pub(crate) shards: Vec<Shard>,
    /// The node that answered.
    pub(crate) via: NodeAddr,
}

/// A shard node's client address (its endpoint, else its ip; its port, else its TLS port).
pub(crate) fn node_addr(n: &ShardNode) -> Option<NodeAddr> {
    let host = if n.endpoint.is_empty() || n.endpoint == "?" { &n.ip } else { &n.endpoint };
    Some(NodeAddr::new(host.as_str(), n.port.or(n.tls_port)?))
}

impl Topology {
    /// Asks the seeds in turn for `CLUSTER SHARDS`; the first answer wins.
    pub(crate) fn discover(seeds: &[NodeAddr]) -> Result<Self> {
        let mut errors = Vec::new();
        for seed in seeds {
            let reply = Conn::connect(seed).and_then(|mut c| c.cmd(["CLUSTER", "SHARDS"]));
            match reply {
                Ok(v) => match slotcache_tests::resp::error_text(&v) {
                    None => {
                        let shards = topo::parse_cluster_shards(&v).with_context(|| format!("{seed}"))?;
                        return Ok(Self { shards, via: seed.clone() });
                    }
                    Some(e) => errors.push(format!("{seed}: {e}")),
                },
                Err(e) => errors.push(format!("{seed}: {e}")),
            }
        }
        bail!(
            "no seed answered CLUSTER SHARDS ({}). Check the addresses, or run `slotcache dev up` \
             for a local cluster",
            errors.join("; ")
        )
    }

    /// The shard serving `slot`.
    pub(crate) fn shard_of(&self, slot: u16) -> Option<&Shard> {
        self.shards.iter().find(|s| s.serves(slot))
    }

    /// The master address serving `slot`.
    pub(crate) fn owner(&self, slot: u16) -> Option<NodeAddr> {
        self.shard_of(slot).and_then(Shard::master).and_then(node_addr)
    }

    /// Masters with their slot ranges and online replicas, sorted by first slot.
    pub(crate) fn layout(&self) -> Vec<(String, NodeAddr, Vec<NodeAddr>)> {
        let mut rows: Vec<_> = self
            .shards
            .iter()
            .filter(|s| !s.slots.is_empty())
            .filter_map(|s| {
                let master = node_addr(s.master()?)?;
                let replicas = s
                    .nodes
                    .iter()
                    .filter(|n| n.role == Role::Replica && n.health == "online")
                    .filter_map(node_addr)
                    .collect();
                let ranges = s
                    .slots
                    .iter()
                    .map(|&(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") })
                    .collect::<Vec<_>>()
                    .join(",");
                Some((ranges, master, replicas))
            })
            .collect();
        rows.sort_by_key(|r| first_slot(&r.0));
        rows
    }
}

fn first_slot(ranges: &str) -> u32 {
    ranges.split(['-', ',']).next().and_then(|s| s.parse().ok()).unwrap_or(u32::MAX)
}
