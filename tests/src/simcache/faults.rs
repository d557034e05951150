//! Fault schedules for simulated history runs: what breaks caches, at instants drawn from the
//! seed, each applied to whatever node holds the role at that moment.
//!
//! Every run has one **lossy failover episode** on a random shard (the case the durability
//! protocol exists for): the shard's replica is frozen, the primary loses its script cache
//! (restart or `SCRIPT FLUSH`), and later the frozen replica is promoted with only what it had
//! applied; then it thaws. Around it, random faults: a second failover of the same shard,
//! lossless failovers, legacy and atomic slot migrations, slow nodes, dropped connections,
//! paused nodes, half-open connections, script flushes, restarts.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::{NodeAddr, Slot};

use crate::history::workload::Rng;
use crate::sim::{Session, Sim};

/// One fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Freeze the replica of the primary of `slot` (it applies nothing until thawed).
    Freeze(Slot),
    /// Thaw every frozen replica.
    ThawAll,
    /// `SCRIPT FLUSH` on the primary of `slot`.
    ScriptFlush(Slot),
    /// Restart the primary of `slot`, data kept (its script cache is lost).
    Restart(Slot),
    /// Promote the replica of `slot`'s primary with only what it applied (the old primary
    /// stays, as its replica).
    LossyFailover(Slot),
    /// `CLUSTER FAILOVER`: the replica catches up first.
    ManualFailover(Slot),
    /// A legacy migration of `slot` to another primary: started, keys moved one by one, then
    /// finished by [`Fault::FinishMigration`].
    StartMigration(Slot),
    /// Moves one more key of a migrating slot (or finishes it when none is left).
    FinishMigration(Slot),
    /// Valkey 9's atomic migration of `slot` to another primary.
    AtomicMigration(Slot),
    /// Adds latency to the primary of `slot` (0 removes it).
    Slow(Slot, Duration),
    /// Drops every connection to the primary of `slot`.
    DropConnections(Slot),
    /// Makes every connection to the primary of `slot` half-open: bytes accepted and lost,
    /// nothing answered, no close (the client must notice the stall and reconnect).
    HalfOpen(Slot),
    /// Pauses the primary of `slot` (`SIGSTOP`)...
    Pause(Slot),
    /// ... and resumes every paused node.
    ResumeAll,
    /// The primary of `slot` answers its next N keyed commands with an error (whatever they
    /// are: a delete of an invalidation's clean-up, a swap, a write, a read).
    FailNext(Slot, u32),
    /// The primary of `slot` lets its next `skip` keyed commands through, then answers the N
    /// after them with an error.
    FailAfter(Slot, u32, u32),
}

/// Faults at instants of virtual time since the start.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    /// `(at, fault)`, in time order.
    pub faults: Vec<(Duration, Fault)>,
}

fn slot(rng: &mut Rng) -> Slot {
    slotcache_core::key_slot(format!("fault-{}", rng.next()).as_bytes())
}

fn ms(rng: &mut Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + rng.next() % (hi - lo).max(1))
}

impl Schedule {
    /// A random schedule over `horizon`, from `seed`. `episode_slot` is the slot whose shard
    /// has the lossy failover episode (a tag's slot makes it bite).
    #[must_use]
    pub fn random(seed: u64, horizon: Duration, episode_slot: Slot) -> Self {
        let mut rng = Rng::new(seed ^ 0xFA17);
        let mut faults = Vec::new();
        let h = u64::try_from(horizon.as_millis()).unwrap_or(1000).max(100);
        // The episode.
        let t0 = ms(&mut rng, h / 10, h / 3);
        faults.push((t0, Fault::Freeze(episode_slot)));
        let cache_loss =
            if rng.below(2) == 0 { Fault::Restart(episode_slot) } else { Fault::ScriptFlush(episode_slot) };
        faults.push((t0 + ms(&mut rng, 1, 50), cache_loss));
        let t1 = t0 + ms(&mut rng, 100, h / 3);
        faults.push((t1, Fault::LossyFailover(episode_slot)));
        faults.push((t1 + ms(&mut rng, 1, 100), Fault::ThawAll));
        if rng.below(3) == 0 {
            // A second failover of the same shard right after.
            faults.push((t1 + ms(&mut rng, 100, 400), Fault::LossyFailover(episode_slot)));
        }
        // Random others.
        for _ in 0..rng.below(6) {
            let at = ms(&mut rng, 1, h);
            let s = slot(&mut rng);
            let f = match rng.below(9) {
                0 => Fault::ManualFailover(s),
                1 => {
                    faults.push((at + ms(&mut rng, 20, 300), Fault::FinishMigration(s)));
                    Fault::StartMigration(s)
                }
                2 => Fault::AtomicMigration(s),
                3 => {
                    faults.push((at + ms(&mut rng, 50, 500), Fault::Slow(s, Duration::ZERO)));
                    Fault::Slow(s, ms(&mut rng, 5, 80))
                }
                4 => Fault::DropConnections(s),
                5 => {
                    faults.push((at + ms(&mut rng, 20, 400), Fault::ResumeAll));
                    Fault::Pause(s)
                }
                6 => Fault::ScriptFlush(s),
                7 => Fault::HalfOpen(s),
                _ => Fault::Restart(s),
            };
            faults.push((at, f));
        }
        faults.sort_by_key(|(at, _)| *at);
        Self { faults }
    }

    /// The faults due by `now`, removed from the schedule.
    pub fn due(&mut self, now: Duration) -> Vec<Fault> {
        let n = self.faults.iter().take_while(|(at, _)| *at <= now).count();
        self.faults.drain(..n).map(|(_, f)| f).collect()
    }

    /// When the next fault is due.
    #[must_use]
    pub fn next_at(&self) -> Option<Duration> {
        self.faults.first().map(|(at, _)| *at)
    }
}

fn primary_of(sim: &Sim, slot: Slot) -> Option<NodeAddr> {
    sim.cluster.owner.get(usize::from(slot.get())).cloned().flatten()
}

fn other_primary(sim: &Sim, of: &NodeAddr) -> Option<NodeAddr> {
    sim.cluster.primaries().into_iter().find(|p| p != of && sim.cluster.nodes.get(p).is_some_and(|n| n.up))
}

/// Applies `fault` to `sim`, returning what it did (for the trace and failure messages).
pub fn apply(sim: &mut Sim, fault: &Fault) -> String {
    let done = format!("{fault:?}");
    let note = |sim: &mut Sim, s: &str| sim.note(format!("fault: {s}"));
    match fault {
        Fault::Freeze(s) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            for r in sim.cluster.replicas_of(&p) {
                sim.cluster.freeze_replica(&r, true);
            }
        }
        Fault::ThawAll => {
            let all: Vec<NodeAddr> = sim.cluster.nodes.keys().cloned().collect();
            for n in all {
                sim.cluster.freeze_replica(&n, false);
            }
        }
        Fault::ScriptFlush(s) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            let args = [Bytes::from_static(b"SCRIPT"), Bytes::from_static(b"FLUSH")];
            let _ = sim.cluster.execute(&p, &args, &mut Session::default());
        }
        Fault::Restart(s) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            sim.restart(&p, true);
        }
        Fault::LossyFailover(s) | Fault::ManualFailover(s) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            let Some(r) = sim.cluster.replicas_of(&p).into_iter().next() else {
                return format!("{done}: no replica");
            };
            if matches!(fault, Fault::LossyFailover(_)) {
                sim.cluster.failover(&r);
            } else {
                sim.cluster.manual_failover(&r);
            }
        }
        Fault::StartMigration(s) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            let Some(t) = other_primary(sim, &p) else { return format!("{done}: no target") };
            if !sim.cluster.migrating.contains_key(&s.get()) {
                sim.cluster.start_migration(*s, &t);
            }
        }
        Fault::FinishMigration(s) => {
            if sim.cluster.migrating.contains_key(&s.get()) {
                sim.cluster.finish_migration(*s);
            }
        }
        Fault::AtomicMigration(s) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            let Some(t) = other_primary(sim, &p) else { return format!("{done}: no target") };
            if !sim.cluster.migrating.contains_key(&s.get()) {
                sim.cluster.migrate_slot_atomic(*s, &t);
            }
        }
        Fault::Slow(s, extra) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            sim.slow_node(&p, *extra);
        }
        Fault::DropConnections(s) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            sim.drop_connections(&p);
        }
        Fault::Pause(s) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            sim.pause(&p);
        }
        Fault::HalfOpen(s) => {
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            sim.half_open(&p);
        }
        Fault::FailNext(s, n) | Fault::FailAfter(s, _, n) => {
            let skip = if let Fault::FailAfter(_, skip, _) = fault { *skip } else { 0 };
            let Some(p) = primary_of(sim, *s) else { return format!("{done}: no primary") };
            if let Some(node) = sim.cluster.nodes.get_mut(&p) {
                node.fail_next = *n;
                node.fail_skip = skip;
                node.fail_with_once = super::orphans::INJECTED.into();
            }
        }
        Fault::ResumeAll => {
            let all: Vec<NodeAddr> = sim.cluster.nodes.keys().cloned().collect();
            for n in all {
                sim.resume(&n);
            }
        }
    }
    note(sim, &done);
    done
}
