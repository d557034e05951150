//! The faults, done to the cluster through the test harness, each step timed against the run's
//! clock, and the repairs after a run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use slotcache_tests::proxy::{Fault, FaultProxy};
use slotcache_tests::{Cluster, DRILL_TIMEOUT};

use super::kind::Drill;
use super::net;

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
    /// Slots moved by an atomic migration (from, to, first, last), to move back after the run.
    pub(crate) moved_range: Option<(usize, usize, u16, u16)>,
    /// Slots moved by legacy migrations (from, to, slots), to move back after the run.
    pub(crate) moved_slots: Option<(usize, usize, Vec<u16>)>,
    /// The node announcing the fault proxy's port (announces its own again after the run).
    pub(crate) announced: Option<usize>,
    /// The replica told not to fail over (told it may again after the run).
    pub(crate) no_failover: Option<usize>,
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

/// After a fault started at `t`: waits until `replica` reports the master role (the end of the
/// fault's window), then until every node agrees, recording both steps.
fn promoted(
    cluster: &Cluster,
    ev: &mut Events,
    replica: usize,
    t: Duration,
    t0: Instant,
) -> anyhow::Result<()> {
    let p = wait_role_master(cluster, replica, t0)?;
    ev.steps.push((p, format!("node {replica} promoted")));
    ev.faults.push((t, p));
    cluster.wait_promoted(replica, DRILL_TIMEOUT)?;
    ev.step(t0, "every node agrees");
    Ok(())
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
    promoted(cluster, ev, replica, t, t0)?;
    Ok(())
}

/// Where a drill strikes.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The shard's primary and its replica.
    pub(crate) victim: usize,
    pub(crate) replica: usize,
    /// Another shard's primary (where migrations go).
    pub(crate) other: usize,
    /// The shard's slots, first and last (a contiguous range).
    pub(crate) range: (u16, u16),
    /// The shard's slots that the load uses (legacy migration moves these).
    pub(crate) hot_slots: Vec<u16>,
    /// Every shard's (primary, replica), for the rolling restart.
    pub(crate) all: Vec<(usize, usize)>,
    /// The fault proxy in front of the victim (drill 6).
    pub(crate) proxy: Option<Arc<FaultProxy>>,
    /// How long a network fault (drill 6) or the node's absence (drill 7) lasts.
    pub(crate) hold: Duration,
}

/// Legacy migrations move at most this many slots per run.
pub(crate) const LEGACY_SLOTS: usize = 24;

/// Restarts node `n` gracefully (`SIGTERM`) and waits until it replicates `m` again and the
/// cluster is healthy.
fn restart_replica(
    cluster: &mut Cluster,
    ev: &mut Events,
    n: usize,
    m: usize,
    t0: Instant,
) -> anyhow::Result<()> {
    ev.step(t0, format!("restart node {n}"));
    cluster.stop_node(n)?;
    cluster.restart(n)?;
    cluster.wait_replica_of(n, m, DRILL_TIMEOUT)?;
    cluster.wait_healthy(DRILL_TIMEOUT)?;
    ev.step(t0, format!("node {n} back"));
    Ok(())
}

/// Does `drill` to the shard of `tg`.
pub(crate) fn inject(
    cluster: &mut Cluster,
    drill: Drill,
    tg: &Target,
    t0: Instant,
    ev: &mut Events,
) -> anyhow::Result<()> {
    let (victim, replica) = (tg.victim, tg.replica);
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
            promoted(cluster, ev, replica, t, t0)?;
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
        Drill::MigrateAtomic => {
            let (lo, hi) = tg.range;
            let t = ev
                .step(t0, format!("CLUSTER MIGRATESLOTS {lo}-{hi} from node {victim} to node {}", tg.other));
            ev.moved_range = Some((victim, tg.other, lo, hi));
            cluster.migrate_slots(victim, tg.other, lo, hi)?;
            let e = ev.step(t0, "migration done, every node agrees");
            ev.faults.push((t, e));
            Ok(())
        }
        Drill::MigrateLegacy => {
            let slots: Vec<u16> = tg.hot_slots.iter().copied().take(LEGACY_SLOTS).collect();
            let t = ev.step(
                t0,
                format!("legacy migration of {} slots from node {victim} to node {}", slots.len(), tg.other),
            );
            ev.moved_slots = Some((victim, tg.other, Vec::new()));
            for &slot in &slots {
                cluster.migrate_slot_legacy(slot, victim, tg.other)?;
                if let Some((_, _, moved)) = ev.moved_slots.as_mut() {
                    moved.push(slot);
                }
            }
            let e = ev.step(t0, "every slot moved, every node agrees");
            ev.faults.push((t, e));
            Ok(())
        }
        Drill::NetLatency
        | Drill::NetBandwidth
        | Drill::NetDrop
        | Drill::NetHalfOpen
        | Drill::NetBlackhole => {
            let proxy = tg.proxy.as_ref().context("no fault proxy in front of the victim")?;
            let fault = net::fault_of(drill).context("not a network drill")?;
            let t = ev.step(t0, format!("proxy of node {victim}: {fault:?}"));
            proxy.set(fault);
            // The fault's length is the point of the drill: a timed fault, not a wait.
            std::thread::sleep(tg.hold);
            let l = ev.step(t0, "fault lifted");
            proxy.set(Fault::None);
            ev.faults.push((t, l));
            Ok(())
        }
        Drill::NodeDown => {
            cluster.conn(replica)?.cmd_ok(["CONFIG", "SET", "cluster-replica-no-failover", "yes"])?;
            ev.no_failover = Some(replica);
            let t = ev.step(t0, format!("SIGKILL node {victim} (node {replica} may not fail over)"));
            cluster.kill(victim)?;
            ev.killed.push(victim);
            // The node's absence is the point of the drill: a timed fault, not a wait.
            std::thread::sleep(tg.hold.saturating_sub(t0.elapsed() - t));
            ev.step(t0, format!("CLUSTER FAILOVER FORCE to node {replica}"));
            cluster.conn(replica)?.cmd_ok(["CLUSTER", "FAILOVER", "FORCE"])?;
            promoted(cluster, ev, replica, t, t0)?;
            Ok(())
        }
        Drill::RollingRestart => {
            let t = ev.step(t0, "rolling restart begins");
            for &(m, r) in &tg.all {
                restart_replica(cluster, ev, r, m, t0)?;
                let f = ev.step(t0, format!("CLUSTER FAILOVER to node {r}"));
                cluster.failover(r, slotcache_tests::FailoverMode::Default)?;
                let p = ev.step(t0, format!("node {r} is the primary, node {m} its replica"));
                ev.faults.push((f, p));
                restart_replica(cluster, ev, m, r, t0)?;
            }
            ev.step(t0, "every node restarted");
            if ev.faults.is_empty() {
                ev.faults.push((t, t0.elapsed()));
            }
            Ok(())
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
    if let Some(n) = ev.announced {
        cluster.announce_port(n, None).with_context(|| format!("node {n} announcing its own port"))?;
    }
    if let Some(r) = ev.no_failover {
        cluster.conn(r)?.cmd_ok(["CONFIG", "SET", "cluster-replica-no-failover", "no"])?;
    }
    if let Some((from, to, lo, hi)) = ev.moved_range {
        // Back where it was (the drill's shards are fixed slot ranges). A half-done job is
        // cancelled first.
        let _ = cluster.cmd(from, ["CLUSTER", "CANCELSLOTMIGRATIONS", "ALL"]);
        if cluster.slot_owner(lo)? == Some(to) {
            cluster.migrate_slots(to, from, lo, hi).context("moving the slots back")?;
        }
    }
    if let Some((from, to, moved)) = &ev.moved_slots {
        for &slot in moved {
            cluster
                .migrate_slot_legacy(slot, *to, *from)
                .with_context(|| format!("moving slot {slot} back"))?;
        }
    }
    cluster.wait_healthy(DRILL_TIMEOUT).context("waiting for a healthy cluster after the run")?;
    Ok(())
}
