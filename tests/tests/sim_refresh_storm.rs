//! Simulation: after a resharding the client's map is wrong for many slots, and thousands of
//! requests meet MOVED within a second. Each MOVED patches its slot at once, and the refresh
//! policy turns the flood of triggers into a handful of CLUSTER SHARDS queries (the storms of
//! valkey-go#140 and rueidis#335 do not happen).
//!
//! The keys are spread so thinly (3000 keys, about 1000 on node 0's 5461 slots) that nearly
//! every one is in a slot of its own: a MOVED patch alone saves almost nothing, and only the
//! refresh that the first MOVED triggers stops the flood. So the number of MOVED replies is
//! bounded by the node-0 keys sent before that refresh can land, and a control run with the
//! refresh held off (a `min_interval` longer than the run) shows what a storm looks like: one
//! MOVED per node-0 key.

use std::time::Duration;

use slotcache_core::client::{ClientConfig, Cmd, Request};
use slotcache_core::key_slot;
use slotcache_tests::sim::{Sim, SimCluster, addr};

/// Requests per batch; one batch every [`BATCH_EVERY`].
const BATCH: usize = 30;
const BATCH_EVERY: Duration = Duration::from_millis(10);
const KEYS: usize = 3000;

/// What one run saw.
struct Storm {
    /// MOVED replies.
    moved: u64,
    /// CLUSTER SHARDS queries during the storm.
    refreshes: u64,
    /// Keys whose slot moved (node 0's).
    moved_keys: u64,
    /// Of those, the ones in the first two batches: the batch whose MOVED triggers the refresh,
    /// and the next one, sent while the refresh (at most the policy's jitter, 2 ms per node,
    /// plus a round trip of 0.2 ms) is on its way. Every later request is routed by the new map.
    moved_keys_before_refresh: u64,
}

fn storm(cfg: ClientConfig) -> Storm {
    let mut sim = Sim::new(SimCluster::new(3, 0), cfg, 81);
    let keys: Vec<String> = (0..KEYS).map(|i| format!("r:{i}")).collect();
    sim.run_for(Duration::from_secs(1));
    let before = sim.cluster.count_all("CLUSTER SHARDS");
    let on_node0 = |sim: &Sim, k: &str| sim.cluster.owner[key_slot(k.as_bytes()).index()] == Some(addr(0));
    let moved_keys = keys.iter().filter(|k| on_node0(&sim, k)).count() as u64;
    let moved_keys_before_refresh = keys[..2 * BATCH].iter().filter(|k| on_node0(&sim, k)).count() as u64;
    // Node 0's slots all move to node 1 behind the client's back.
    for o in &mut sim.cluster.owner {
        if o.as_ref() == Some(&addr(0)) {
            *o = Some(addr(1));
        }
    }
    // 1 s of traffic: 3000 requests in 100 batches.
    let mut ids = Vec::new();
    for batch in keys.chunks(BATCH) {
        for k in batch {
            ids.push(sim.submit(Request::command(Cmd::new("SET").arg(k.as_str()).arg("v"))));
        }
        sim.run_for(BATCH_EVERY);
    }
    for id in ids {
        sim.wait(id).expect("every request succeeds");
    }
    Storm {
        moved: sim.client.stats().moved,
        refreshes: sim.cluster.count_all("CLUSTER SHARDS") - before,
        moved_keys,
        moved_keys_before_refresh,
    }
}

#[test]
fn moved_flood_gives_bounded_refreshes() {
    let s = storm(Sim::config());
    eprintln!(
        "[figure] refresh storm: {} MOVED for {} moved keys ({} in the first two batches), {} refreshes",
        s.moved, s.moved_keys, s.moved_keys_before_refresh, s.refreshes
    );
    assert!(s.moved_keys > 900, "the scenario moves about a third of the keys: {}", s.moved_keys);
    // min_interval 100 ms over ~1 s of triggers: at most 1 s / 100 ms + 2.
    assert!(s.refreshes <= 12, "refreshes during the storm: {}", s.refreshes);
    assert!(s.refreshes >= 1);
    assert!(s.moved >= 1, "the stale map met MOVED");
    assert!(
        s.moved <= s.moved_keys_before_refresh,
        "the refresh the first MOVED triggers stops the flood: {} MOVED, but only {} moved keys were \
         sent before it could land ({} moved keys in all)",
        s.moved,
        s.moved_keys_before_refresh,
        s.moved_keys
    );
}

/// The control: with the refresh held off, MOVED patches alone leave one MOVED per moved key
/// (nearly every key has a slot of its own), far over the bound the test above holds the client
/// to. A client that stopped refreshing on MOVED would fail that bound.
#[test]
fn without_the_refresh_every_moved_key_meets_moved() {
    let mut cfg = Sim::config();
    cfg.refresh.min_interval = Duration::from_secs(3600);
    cfg.refresh.periodic = None;
    let s = storm(cfg);
    eprintln!(
        "[figure] refresh held off: {} MOVED for {} moved keys, {} refreshes",
        s.moved, s.moved_keys, s.refreshes
    );
    assert_eq!(s.refreshes, 0, "the control run must not refresh");
    assert!(s.moved > s.moved_keys_before_refresh, "{} MOVED", s.moved);
    assert!(s.moved * 10 >= s.moved_keys * 9, "a storm: {} MOVED for {} moved keys", s.moved, s.moved_keys);
}
