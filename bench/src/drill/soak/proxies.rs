//! The soak's fault proxies, for the network faults of drill 6: one in front of every node from
//! the start, each node announcing its proxy's port, so the clients and the replicas reach
//! every node through its proxy. A node that a fault restarts comes back announcing its own
//! port; [`Proxies::reannounce`] sets it back after each fault.

use std::sync::Arc;

use anyhow::Context as _;
use slotcache_core::Value;
use slotcache_tests::Cluster;
use slotcache_tests::proxy::FaultProxy;

use super::super::net;

/// A proxy per node, by node index.
pub(crate) struct Proxies(Vec<Arc<FaultProxy>>);

impl Proxies {
    /// Puts a proxy in front of every node of `cluster` (each waits until every node sees it).
    pub(crate) fn start(cluster: &Cluster) -> anyhow::Result<Self> {
        let all = (0..cluster.nodes().len())
            .map(|n| net::put_in_front(cluster, n).with_context(|| format!("a proxy in front of node {n}")))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self(all))
    }

    /// The proxy in front of node `n`.
    pub(crate) fn of(&self, n: usize) -> Option<Arc<FaultProxy>> {
        self.0.get(n).cloned()
    }

    /// Makes every node that announces another port (restarted since) announce its proxy's
    /// again.
    pub(crate) fn reannounce(&self, cluster: &Cluster) -> anyhow::Result<()> {
        for (n, proxy) in self.0.iter().enumerate() {
            let reply = cluster.cmd(n, ["CONFIG", "GET", "cluster-announce-port"])?;
            if announced(&reply) != Some(proxy.port()) {
                cluster
                    .announce_port(n, Some(proxy.port()))
                    .with_context(|| format!("node {n} announcing its proxy's port again"))?;
            }
        }
        Ok(())
    }
}

/// The port in a `CONFIG GET cluster-announce-port` reply (`0`: the node's own).
fn announced(reply: &Value) -> Option<u16> {
    let Value::Array(items) = reply else { return None };
    match items.get(1)? {
        Value::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn the_announced_port_is_read_from_the_reply() {
        let reply = |v: &'static str| {
            Value::Array(vec![
                Value::Bulk(Bytes::from_static(b"cluster-announce-port")),
                Value::Bulk(Bytes::from_static(v.as_bytes())),
            ])
        };
        assert_eq!(announced(&reply("41234")), Some(41234));
        assert_eq!(announced(&reply("0")), Some(0));
        assert_eq!(announced(&Value::Nil), None);
    }
}
