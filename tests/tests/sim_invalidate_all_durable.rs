//! Simulation: `invalidate_all` (`ScanAll::unlink_namespace`) under `Durability::Replicas`
//! follows each primary's unlinks with a `WAIT` on their connection, and fails with
//! `NotDurable` when a primary's replica does not acknowledge them (frozen, or lagging past the
//! `WAIT`'s timeout): exactly the cases where the replica, which a failover would promote,
//! still holds the deleted keys. With the replicas acknowledging it succeeds, and the replicas
//! hold none of them. The control (`Durability::Primary`, what `invalidate_all` did before)
//! returns `Ok` while the frozen replicas still hold every key.

use std::time::Duration;

use slotcache_core::cache::op::Deadline;
use slotcache_core::cache::op::scan::ScanAll;
use slotcache_core::cache::{CacheError, Durability};
use slotcache_core::client::Cmd;
use slotcache_core::keys::Namespace;
use slotcache_tests::sim::{Sim, SimCluster};

const KEYS: usize = 30;
const REPLICAS: Durability = Durability::Replicas { replicas: 1, timeout: Duration::from_millis(250) };

#[derive(Clone, Copy, Debug)]
enum Replica {
    Running,
    Frozen,
    /// Applies each write 1 s late: longer than the `WAIT`'s 250 ms.
    Lagging,
}

struct Outcome {
    result: Result<u64, CacheError>,
    /// Keys still on the primaries.
    on_primaries: usize,
    /// Keys still on the replicas (what a failover now would promote).
    on_replicas: usize,
    waits: u64,
}

fn run(durability: Durability, replica: Replica, seed: u64) -> Outcome {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), seed);
    let keys: Vec<String> = (0..KEYS).map(|i| format!("ns:k{i}")).collect();
    for k in &keys {
        sim.call(Cmd::new("SET").arg(k.as_str()).arg("v")).expect("SET");
    }
    // Every replica has applied the writes.
    sim.run_for(Duration::from_millis(50));
    let primaries = sim.cluster.primaries();
    let replicas: Vec<_> = primaries.iter().flat_map(|p| sim.cluster.replicas_of(p)).collect();
    assert_eq!(held(&sim, &replicas, &keys), KEYS, "the replicas have every key");
    for r in &replicas {
        match replica {
            Replica::Running => {}
            Replica::Frozen => sim.cluster.freeze_replica(r, true),
            Replica::Lagging => sim.cluster.set_replication_lag(r, Duration::from_secs(1), Duration::ZERO),
        }
    }
    let ns = Namespace::new("ns").expect("namespace");
    let deadline = Deadline::new(sim.now, "invalidate_all", Duration::from_secs(30));
    let result = sim.drive(ScanAll::unlink_namespace(&ns, durability, deadline), seed);
    let waits = primaries.iter().map(|p| sim.cluster.count(p, "WAIT")).sum();
    Outcome {
        result,
        on_primaries: held(&sim, &primaries, &keys),
        on_replicas: held(&sim, &replicas, &keys),
        waits,
    }
}

/// How many of `keys` the `nodes` hold.
fn held(sim: &Sim, nodes: &[slotcache_core::NodeAddr], keys: &[String]) -> usize {
    keys.iter().filter(|k| nodes.iter().any(|n| sim.cluster.get(n, k.as_bytes()).is_some())).count()
}

#[test]
fn acknowledged_by_running_replicas() {
    for seed in 1..=3 {
        let o = run(REPLICAS, Replica::Running, seed);
        assert_eq!(o.result.as_ref().ok(), Some(&(KEYS as u64)), "seed {seed}: {:?}", o.result);
        assert_eq!((o.on_primaries, o.on_replicas), (0, 0), "seed {seed}: gone everywhere");
        assert!(o.waits >= 1, "seed {seed}: the unlinks were waited for");
    }
}

#[test]
fn not_durable_when_a_replica_is_frozen_or_lags() {
    for replica in [Replica::Frozen, Replica::Lagging] {
        let o = run(REPLICAS, replica, 4);
        assert!(
            matches!(o.result, Err(CacheError::NotDurable { acked: 0, wanted: 1 })),
            "{replica:?}: {:?}",
            o.result
        );
        assert_eq!(o.on_primaries, 0, "{replica:?}: the keys are gone from the primaries");
        assert_eq!(o.on_replicas, KEYS, "{replica:?}: the replicas still hold them");
    }
}

#[test]
fn control_without_durability_reports_ok_while_replicas_still_hold_the_keys() {
    let o = run(Durability::Primary, Replica::Frozen, 5);
    assert_eq!(o.result.as_ref().ok(), Some(&(KEYS as u64)), "{:?}", o.result);
    assert_eq!((o.on_primaries, o.on_replicas, o.waits), (0, KEYS, 0));
}
