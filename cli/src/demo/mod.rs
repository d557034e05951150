//! `slotcache demo`: slotcache at work, one module per step.
//!
//! 1. [`form`]: start a local 3+3 cluster (or read the layout of the one given by `--seeds`).
//! 2. [`keys`]: keys spread over slots, and which node owns each.
//! 3. [`cache`]: the cache API on tokio: a typed namespace, TTLs, tags and invalidation by
//!    tag, a bulk get across slots, compute.
//! 4. [`failover`]: a master is killed under traffic; the client keeps serving and follows the
//!    promoted replica, with no wrong value (only on a cluster the demo started itself).

mod cache;
mod failover;
mod form;
mod keys;
mod out;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use slotcache_core::NodeAddr;
use slotcache_tests::Cluster;

use crate::seeds::Topology;

/// Number of steps, for the `[n/N]` headers.
const STEPS: usize = 4;

/// What the steps share.
pub(crate) struct Ctx {
    /// The cluster the demo started, if it started one (then it may kill its nodes).
    cluster: Option<Cluster>,
    /// The layout, as read at the start.
    topology: Topology,
    /// Seeds for the client.
    seeds: Vec<NodeAddr>,
    /// The runtime the cache steps run on.
    rt: std::sync::Arc<tokio::runtime::Runtime>,
    /// The cache provider (step 3 connects it, step 4 reuses it).
    provider: Option<slotcache_tokio::Provider>,
    /// Figures for the summary.
    summary: Vec<(String, String)>,
}

pub(crate) fn run(seeds: &[NodeAddr], nkeys: usize) -> Result<ExitCode> {
    let t0 = Instant::now();
    out::title("slotcache demo");
    let mut ctx = form::run(seeds)?;
    keys::run(&ctx, nkeys)?;
    cache::run(&mut ctx)?;
    failover::run(&mut ctx)?;
    if let Some(p) = ctx.provider.take() {
        ctx.rt.block_on(p.close());
    }

    if let Some(mut cluster) = ctx.cluster.take() {
        let took = cluster.stop_all();
        drop(cluster);
        out::note(&format!("stopped the local cluster in {:.2} s", took.as_secs_f64()));
    }
    out::summary(&ctx.summary, t0.elapsed());
    Ok(ExitCode::SUCCESS)
}
