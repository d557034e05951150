//! Simulation: a frozen node (SIGSTOP). Its requests fail at their deadline with a typed
//! timeout while the other shards keep answering at full speed; its queue is bounded, so
//! memory stays flat (requests beyond the bound fail at once); after it thaws, it serves again.

use std::time::Duration;

use slotcache_core::client::{Cmd, Request, RequestError, TimeoutStage};
use slotcache_tests::sim::{Sim, SimCluster, addr};

#[test]
fn frozen_node_times_out_alone_and_its_queue_is_bounded() {
    let mut cfg = Sim::config();
    cfg.max_queued_per_node = 100;
    let mut sim = Sim::new(SimCluster::new(3, 0), cfg, 61);
    let keys: Vec<String> = (0..600).map(|i| format!("s:{i}")).collect();
    for k in &keys {
        sim.call(Cmd::new("SET").arg(k.as_str()).arg("v")).expect("set");
    }
    let frozen = addr(0);
    let (on_frozen, healthy): (Vec<&String>, Vec<&String>) =
        keys.iter().partition(|k| sim.cluster.owner_of(k.as_bytes()) == frozen);
    assert!(on_frozen.len() > 150 && healthy.len() > 150);
    sim.pause(&frozen);
    let start = sim.now;
    // 150 requests for the frozen shard: 100 queue up, the rest fail at once.
    let stuck: Vec<_> = on_frozen
        .iter()
        .take(150)
        .map(|k| sim.submit(Request::command(Cmd::new("GET").arg(k.as_str()))))
        .collect();
    let queue_full = stuck
        .iter()
        .filter(|id| matches!(sim.completed.get(id), Some(Err(RequestError::QueueFull { .. }))))
        .count();
    assert_eq!(queue_full, 50, "beyond the bound of 100, requests fail at once");
    // Healthy shards answer within a millisecond of virtual time.
    let fine: Vec<_> = healthy
        .iter()
        .take(150)
        .map(|k| sim.submit(Request::command(Cmd::new("GET").arg(k.as_str()))))
        .collect();
    sim.run_for(Duration::from_millis(1));
    for id in &fine {
        assert!(
            sim.completed.get(id).is_some_and(Result::is_ok),
            "healthy shard answered at once: {:?}",
            sim.completed.get(id)
        );
    }
    for id in stuck {
        match sim.wait(id) {
            Err(
                RequestError::Timeout { stage: TimeoutStage::Reply, .. } | RequestError::QueueFull { .. },
            ) => {}
            other => panic!("frozen shard: expected timeout or queue full, got {other:?}"),
        }
    }
    let waited = sim.now - start;
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_millis(2100),
        "deadline kept: {waited:?}"
    );
    sim.resume(&frozen);
    sim.run_for(Duration::from_millis(5));
    for k in keys.iter().take(50) {
        sim.call(Cmd::new("GET").arg(k.as_str())).expect("served after thaw");
    }
}
