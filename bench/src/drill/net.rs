//! Drill 6: the fault proxy of the test harness put in front of the faulty shard's primary,
//! and the fault each variant switches on.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use slotcache_tests::Cluster;
use slotcache_tests::proxy::{Fault, FaultProxy};

use super::kind::Drill;

/// The latency added by drill 6a.
pub(crate) const LATENCY: Duration = Duration::from_millis(200);
/// The cap of drill 6b, bytes per second per connection and direction.
pub(crate) const BANDWIDTH: u64 = 16 * 1024;

/// The proxy's fault for a drill-6 variant (`None` for the other drills).
pub(crate) const fn fault_of(d: Drill) -> Option<Fault> {
    match d {
        Drill::NetLatency => Some(Fault::Latency(LATENCY)),
        Drill::NetBandwidth => Some(Fault::Bandwidth(BANDWIDTH)),
        Drill::NetDrop => Some(Fault::Drop),
        Drill::NetHalfOpen => Some(Fault::HalfOpen),
        Drill::NetBlackhole => Some(Fault::Blackhole),
        _ => None,
    }
}

/// Starts a proxy in front of node `n` and makes the node announce it (waits until every node
/// sees the proxy's port).
pub(crate) fn put_in_front(cluster: &Cluster, n: usize) -> anyhow::Result<Arc<FaultProxy>> {
    let a = cluster.node(n).addr();
    let upstream: SocketAddr = (a.host(), a.port())
        .to_socket_addrs()
        .context("resolving the node's address")?
        .next()
        .context("the node's address resolves to nothing")?;
    let proxy = Arc::new(FaultProxy::start(upstream).context("starting the fault proxy")?);
    cluster.announce_port(n, Some(proxy.port())).context("announcing the proxy's port")?;
    Ok(proxy)
}
