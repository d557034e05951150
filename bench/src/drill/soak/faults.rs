//! The soak's faults: drawn at random from the drills' list, injected one at a time through
//! the drills' own steps ([`super::super::fault`]), healed, and timed until the cluster is
//! healthy again.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use slotcache_tests::{Cluster, DRILL_TIMEOUT, FailoverMode};

use super::super::fault::{self, Events, Target};
use super::super::kind::Drill;
use super::super::shards::Layout;
use super::proxies::Proxies;
use crate::workloads::Rng;

/// One fault of the soak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SoakFault {
    /// A fault of the drills (`SIGKILL`, `SIGSTOP`, two failovers, migrations, and the network
    /// faults of the fault proxy in front of the shard's primary, each held [`NET_HOLD`]).
    Drill(Drill),
    /// `CLUSTER FAILOVER` to a shard's replica.
    ClusterFailover,
    /// `SCRIPT FLUSH` on every primary.
    ScriptFlush,
    /// A graceful restart of a shard's replica.
    RestartNode,
}

/// How long a network fault lasts (as in drill 6).
pub(crate) const NET_HOLD: Duration = Duration::from_secs(5);

/// The faults the soak draws from (equally likely).
pub(crate) const ALL: [SoakFault; 14] = [
    SoakFault::Drill(Drill::KillPinned),
    SoakFault::Drill(Drill::PauseShort),
    SoakFault::Drill(Drill::PauseLong),
    SoakFault::Drill(Drill::DoubleFailover),
    SoakFault::Drill(Drill::MigrateAtomic),
    SoakFault::Drill(Drill::MigrateLegacy),
    SoakFault::ClusterFailover,
    SoakFault::ScriptFlush,
    SoakFault::RestartNode,
    SoakFault::Drill(Drill::NetLatency),
    SoakFault::Drill(Drill::NetBandwidth),
    SoakFault::Drill(Drill::NetDrop),
    SoakFault::Drill(Drill::NetHalfOpen),
    SoakFault::Drill(Drill::NetBlackhole),
];

impl SoakFault {
    /// Its name in the report.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Drill(Drill::KillPinned) => "sigkill-primary",
            Self::Drill(d) => d.name(),
            Self::ClusterFailover => "cluster-failover",
            Self::ScriptFlush => "script-flush",
            Self::RestartNode => "restart-node",
        }
    }
}

/// Draws a fault and a shard.
pub(crate) fn draw(rng: &mut Rng, shards: usize) -> (SoakFault, usize) {
    (ALL[rng.below(ALL.len())], rng.below(shards))
}

/// Does `f` to shard `shard` and undoes what it left (restarts, slots moved back, timeouts
/// set back, every node announcing its proxy again); returns the steps it took. The cluster is
/// healthy when it returns `Ok`.
pub(crate) fn inject_and_heal(
    cluster: &mut Cluster,
    layout: &Layout,
    proxies: &Proxies,
    f: SoakFault,
    shard: usize,
    hot_slots: Vec<u16>,
    node_timeout: Duration,
) -> anyhow::Result<Events> {
    let t0 = Instant::now();
    let mut ev = Events::default();
    let (victim, replica) = layout.primary_and_replica(cluster, shard)?;
    let injected = match f {
        SoakFault::Drill(d) => {
            let shards = layout.len();
            let target = Target {
                proxy: proxies.of(victim),
                hold: NET_HOLD,
                victim,
                replica,
                other: layout.primary_and_replica(cluster, (shard + 1) % shards)?.0,
                range: layout
                    .range(shard)
                    .with_context(|| format!("shard {shard}'s slots are not one range"))?,
                hot_slots,
                all: (0..shards)
                    .map(|s| layout.primary_and_replica(cluster, s))
                    .collect::<anyhow::Result<_>>()?,
            };
            fault::inject(cluster, d, &target, t0, &mut ev)
        }
        SoakFault::ClusterFailover => cluster
            .failover(replica, FailoverMode::Default)
            .map(|_| ())
            .with_context(|| format!("CLUSTER FAILOVER to node {replica}")),
        SoakFault::ScriptFlush => cluster
            .masters()
            .map_err(anyhow::Error::from)
            .and_then(|ms| {
                for m in ms {
                    cluster.conn(m)?.cmd_ok(["SCRIPT", "FLUSH"])?;
                }
                Ok(())
            })
            .context("SCRIPT FLUSH"),
        SoakFault::RestartNode => (|| {
            cluster.stop_node(replica)?;
            cluster.restart(replica)?;
            cluster.wait_replica_of(replica, victim, DRILL_TIMEOUT)?;
            anyhow::Ok(())
        })()
        .with_context(|| format!("restarting node {replica}")),
    };
    let healed = fault::heal(cluster, &ev, node_timeout)
        .and_then(|()| proxies.reannounce(cluster).context("the proxies announced again"));
    injected?;
    healed?;
    Ok(ev)
}
