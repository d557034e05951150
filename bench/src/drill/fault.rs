//! The faults, done to the cluster through the test harness, each step timed against the run's
//! clock, and the repairs after a run.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use slotcache_tests::{Cluster, DRILL_TIMEOUT};

use super::kind::Drill;

/// How long the short pause lasts.
pub(crate) const SHORT_PAUSE: Duration = Duration::from_secs(5);
/// The node timeout set for the short pause (longer than the pause: no failover).
const LONG_NODE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the replica's role is polled to time its promotion.
const ROLE_POLL: Duration = Duration::from_millis(5);

/// What was done and when (from the run's start).
#[derive(Clone, Debug, Default)]
pub(crate) struct Events {
    /// Every step, in order: time and label.
    pub(crate) steps: Vec<(Duration, String)>,
    /// The faults (kill or stop) and the point each one ends for the cluster: the promotion
    /// (when the replica itself says it is the master), or `SIGCONT` for the short pause.
    pub(crate) faults: Vec<(Duration, Duration)>,
    /// Nodes killed (to restart after the run).
    pub(crate) killed: Vec<usize>,
    /// Nodes left paused by a failed step (to wake after the run).
    pub(crate) paused: Vec<usize>,
    /// Whether the node timeout was raised (to set back after the run).
    pub(crate) raised_timeout: bool,
}

impl Events {
    fn step(&mut self, t0: Instant, label: impl Into<String>) -> Duration {
        let t = t0.elapsed();
        self.steps.push((t, label.into()));
        t
    }

    /// The first fault.
    pub(crate) fn first_fault(&self) -> Option<Duration> {
        self.faults.first().map(|f| f.0)
    }

    /// The last fault.
    pub(crate) fn last_fault(&self) -> Option<Duration> {
        self.faults.last().map(|f| f.0)
    }
}

/// Waits (bounded) until replica `r` itself reports the master role: the earliest moment a
/// client can be served by it.
fn wait_role_master(cluster: &Cluster, r: usize, t0: Instant) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + slotcache_tests::wait::scaled(DRILL_TIMEOUT);
    let mut conn = cluster.conn(r)?;
    loop {
        let info = conn.cmd_text(["INFO", "replication"]);
        if let Ok(info) = info {
            if info.lines().any(|l| l.trim() == "role:master") {
                return Ok(t0.elapsed());
            }
        } else {
            conn = cluster.conn(r)?;
        }
        if Instant::now() > deadline {
            bail!("node {r} was not promoted within {DRILL_TIMEOUT:?}");
        }
        std::thread::sleep(ROLE_POLL);
    }
}

fn set_node_timeout(cluster: &Cluster, t: Duration) -> anyhow::Result<()> {
    for i in cluster.live() {
        cluster.conn(i)?.cmd_ok(["CONFIG", "SET", "cluster-node-timeout", &t.as_millis().to_string()])?;
    }
    Ok(())
}

/// Kills `victim` and waits for `replica`'s promotion (seen by the replica, then by every
/// node).
fn kill_and_promote(
    cluster: &mut Cluster,
    ev: &mut Events,
    victim: usize,
    replica: usize,
    t0: Instant,
) -> anyhow::Result<()> {
    let t = ev.step(t0, format!("SIGKILL node {victim}"));
    cluster.kill(victim)?;
    ev.killed.push(victim);
    let p = wait_role_master(cluster, replica, t0)?;
    ev.steps.push((p, format!("node {replica} promoted")));
    ev.faults.push((t, p));
    cluster.wait_promoted(replica, DRILL_TIMEOUT)?;
    ev.step(t0, "every node agrees");
    Ok(())
}

/// Does `drill` to shard whose primary is `victim` and replica `replica`.
pub(crate) fn inject(
    cluster: &mut Cluster,
    drill: Drill,
    victim: usize,
    replica: usize,
    t0: Instant,
    ev: &mut Events,
) -> anyhow::Result<()> {
    match drill {
        Drill::KillPinned | Drill::KillRandom => kill_and_promote(cluster, ev, victim, replica, t0),
        Drill::PauseShort => {
            set_node_timeout(cluster, LONG_NODE_TIMEOUT)?;
            ev.raised_timeout = true;
            let t = ev.step(t0, format!("SIGSTOP node {victim}"));
            cluster.pause(victim)?;
            ev.paused.push(victim);
            // The fault's length is the point of the drill: a timed pause, not a wait.
            std::thread::sleep(SHORT_PAUSE.saturating_sub(t0.elapsed() - t));
            let c = ev.step(t0, format!("SIGCONT node {victim}"));
            cluster.resume(victim)?;
            ev.paused.retain(|&n| n != victim);
            ev.faults.push((t, c));
            Ok(())
        }
        Drill::PauseLong => {
            let t = ev.step(t0, format!("SIGSTOP node {victim}"));
            cluster.pause(victim)?;
            ev.paused.push(victim);
            let p = wait_role_master(cluster, replica, t0)?;
            ev.steps.push((p, format!("node {replica} promoted")));
            ev.faults.push((t, p));
            cluster.wait_promoted(replica, DRILL_TIMEOUT)?;
            ev.step(t0, "every node agrees");
            ev.step(t0, format!("SIGCONT node {victim}"));
            cluster.resume(victim)?;
            ev.paused.retain(|&n| n != victim);
            cluster.wait_replica_of(victim, replica, DRILL_TIMEOUT)?;
            ev.step(t0, format!("node {victim} replicates node {replica}"));
            Ok(())
        }
        Drill::DoubleFailover => {
            kill_and_promote(cluster, ev, victim, replica, t0)?;
            cluster.restart(victim)?;
            ev.killed.retain(|&n| n != victim);
            ev.step(t0, format!("node {victim} restarted"));
            cluster.wait_replica_of(victim, replica, DRILL_TIMEOUT)?;
            ev.step(t0, format!("node {victim} replicates node {replica}"));
            kill_and_promote(cluster, ev, replica, victim, t0)
        }
    }
}

/// Undoes what a run left: wakes paused nodes, restarts killed ones, sets the node timeout back,
/// and waits for a healthy cluster.
pub(crate) fn heal(cluster: &mut Cluster, ev: &Events, node_timeout: Duration) -> anyhow::Result<()> {
    for &n in &ev.paused {
        cluster.resume(n).with_context(|| format!("waking node {n}"))?;
    }
    for &n in &ev.killed {
        cluster.restart(n).with_context(|| format!("restarting node {n}"))?;
    }
    if ev.raised_timeout {
        set_node_timeout(cluster, node_timeout)?;
    }
    cluster.wait_healthy(DRILL_TIMEOUT).context("waiting for a healthy cluster after the run")?;
    Ok(())
}
