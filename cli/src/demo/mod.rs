//! `slotcache demo`: slotcache at work, one module per step.
//!
//! 1. [`form`]: start a local 3+3 cluster (or read the layout of the one given by `--seeds`).
//! 2. [`keys`]: keys spread over slots, and which node owns each.
//! 3. [`routing`]: a write sent to the wrong node follows `MOVED` to the right one, then reads.
//! 4. [`failover`]: the owning master is killed; its replica takes over and the value is still
//!    readable (only on a cluster the demo started itself).
//!
//! The slotcache client and cache layers are being built elsewhere; until they land, the steps
//! talk through [`raw_client::RawClient`], a stand-in that follows redirects by hand. Switching
//! a step to the real API means changing that step's module (and `Ctx::client`) only.

mod failover;
mod form;
mod keys;
mod out;
mod raw_client;
mod routing;

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
    /// The stand-in client.
    client: raw_client::RawClient,
    /// The key written in step 3 and read again in step 4.
    greeting_key: String,
    /// Figures for the summary.
    summary: Vec<(String, String)>,
}

pub(crate) fn run(seeds: &[NodeAddr], nkeys: usize) -> Result<ExitCode> {
    let t0 = Instant::now();
    out::title("slotcache demo");
    let mut ctx = form::run(seeds)?;
    keys::run(&ctx, nkeys)?;
    routing::run(&mut ctx)?;
    failover::run(&mut ctx)?;

    if let Some(mut cluster) = ctx.cluster.take() {
        let took = cluster.stop_all();
        drop(cluster);
        out::note(&format!("stopped the local cluster in {:.2} s", took.as_secs_f64()));
    } else {
        ctx.client.cleanup(&[ctx.greeting_key.as_str()]);
    }
    out::summary(&ctx.summary, t0.elapsed());
    Ok(ExitCode::SUCCESS)
}
