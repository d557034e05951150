//! Simulation: after a resharding the client's map is wrong for many slots, and thousands of
//! requests meet MOVED within a second. Each MOVED patches its slot at once, and the refresh
//! policy turns the flood of triggers into a handful of CLUSTER SHARDS queries (the storms of
//! valkey-go#140 and rueidis#335 do not happen).

use std::time::Duration;

use slotcache_core::client::{Cmd, Request};
use slotcache_tests::sim::{Sim, SimCluster, addr};

#[test]
fn moved_flood_gives_bounded_refreshes() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 81);
    let keys: Vec<String> = (0..3000).map(|i| format!("r:{i}")).collect();
    sim.run_for(Duration::from_secs(1));
    let before = sim.cluster.count_all("CLUSTER SHARDS");
    // Node 0's slots all move to node 1 behind the client's back.
    for o in &mut sim.cluster.owner {
        if o.as_ref() == Some(&addr(0)) {
            *o = Some(addr(1));
        }
    }
    // 1 s of traffic: 3000 requests in 100 batches.
    let mut ids = Vec::new();
    for batch in keys.chunks(30) {
        for k in batch {
            ids.push(sim.submit(Request::command(Cmd::new("SET").arg(k.as_str()).arg("v"))));
        }
        sim.run_for(Duration::from_millis(10));
    }
    for id in ids {
        sim.wait(id).expect("every request succeeds");
    }
    let refreshes = sim.cluster.count_all("CLUSTER SHARDS") - before;
    // min_interval 100 ms over ~1 s of triggers: at most 1 s / 100 ms + 2.
    assert!(refreshes <= 12, "refreshes during the storm: {refreshes}");
    assert!(refreshes >= 1);
    let moved = sim.client.stats().moved;
    assert!(moved < 1000, "patches and the refresh stop the MOVED flood: {moved} of 3000 requests");
}
