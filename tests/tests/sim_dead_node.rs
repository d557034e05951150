//! Simulation: a dead node that is not replaced. Requests for its slots fail with a typed error
//! (unreachable, or no route once a refresh shows its primary failed: they then wait for a
//! promotion until their deadline), and the client dials it once per backoff interval (10 ms
//! doubling to 1 s), not once per request: a dead node costs a handful of connection attempts,
//! not a connect storm.

use std::time::Duration;

use slotcache_core::client::{Cmd, Request, RequestError};
use slotcache_tests::sim::{Sim, SimCluster, addr};

#[test]
fn dead_node_gets_few_connection_attempts() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 101);
    let keys: Vec<String> = (0..300).map(|i| format!("d:{i}")).collect();
    for k in &keys {
        sim.call(Cmd::new("SET").arg(k.as_str()).arg("v")).expect("set");
    }
    let dead = addr(0);
    let before = sim.connects.get(&dead).copied().unwrap_or(0);
    let start = sim.now;
    sim.kill(&dead);
    let on_dead: Vec<&String> = keys.iter().filter(|k| sim.cluster.owner_of(k.as_bytes()) == dead).collect();
    // One second of traffic: 10 batches of requests for the dead shard.
    let mut failures = 0;
    for _ in 0..10 {
        let ids: Vec<_> =
            on_dead.iter().map(|k| sim.submit(Request::command(Cmd::new("GET").arg(k.as_str())))).collect();
        for id in ids {
            match sim.wait(id) {
                Err(
                    RequestError::Unreachable { .. }
                    | RequestError::ConnectionLost { .. }
                    | RequestError::NoRoute { .. },
                ) => failures += 1,
                other => panic!("a dead shard's request must fail with a typed error, got {other:?}"),
            }
        }
        sim.run_for(Duration::from_millis(100));
    }
    let attempts = sim.connects.get(&dead).copied().unwrap_or(0) - before;
    let secs = (sim.now - start).as_secs();
    assert_eq!(failures, on_dead.len() * 10);
    // Backoff 10, 20, ... 640 ms (8 attempts in the first 1.3 s), then one per second.
    let bound = 8 + secs + 1;
    assert!(
        attempts <= bound,
        "{attempts} connection attempts to a dead node in {secs} s for {failures} requests (bound {bound})"
    );
    // The healthy shards never noticed.
    let healthy: Vec<String> =
        keys.iter().filter(|k| sim.cluster.owner_of(k.as_bytes()) != dead).take(20).cloned().collect();
    for k in healthy {
        sim.call(Cmd::new("GET").arg(k.as_str())).expect("healthy shard");
    }
}
