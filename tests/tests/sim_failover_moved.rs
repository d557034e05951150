//! Simulation: a failover. First a manual one (the old primary stays up as a replica and answers
//! MOVED, which the client follows and patches into its slot map), then a crash (connections
//! drop, connects are refused, a refresh finds the promoted replica). No request ever sees a
//! wrong value; requests during the crash either succeed or fail with a typed error.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::client::{Cmd, Reply, Request, RequestError};
use slotcache_core::{Slot, Value};
use slotcache_tests::sim::{Sim, SimCluster, addr};

fn warm(sim: &mut Sim, n: usize) -> Vec<String> {
    let keys: Vec<String> = (0..n).map(|i| format!("fo:{i}")).collect();
    for k in &keys {
        sim.call(Cmd::new("SET").arg(k.as_str()).arg(format!("v-{k}"))).expect("set");
    }
    keys
}

#[test]
fn manual_failover_is_followed_through_moved() {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), 11);
    let keys = warm(&mut sim, 200);
    sim.run_for(Duration::from_secs(1));
    sim.cluster.failover(&addr(3)); // replica of node 0 takes over; node 0 is now its replica
    for k in &keys {
        let v = sim.call(Cmd::new("GET").arg(k.as_str())).expect("get after failover");
        assert_eq!(v, Value::Bulk(Bytes::from(format!("v-{k}"))));
    }
    let stats = sim.client.stats();
    assert!(stats.moved >= 1, "the old primary answered MOVED: {stats:?}");
    assert!(stats.moved < 40, "one MOVED patches the slot, a refresh fixes the rest: {stats:?}");
    let t = sim.client.topology().expect("topology");
    assert_eq!(t.primary(Slot::new(0).expect("slot")).map(|n| n.addr.clone()), Some(addr(3)));
}

#[test]
fn crashed_primary_is_replaced_without_wrong_values() {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), 12);
    let keys = warm(&mut sim, 300);
    sim.run_for(Duration::from_secs(1));
    sim.kill(&addr(0));
    sim.cluster.failover(&addr(3));
    let ids: Vec<_> = keys
        .iter()
        .map(|k| (k.clone(), sim.submit(Request::command(Cmd::new("GET").arg(k.as_str())))))
        .collect();
    let mut failed = 0;
    for (k, id) in ids {
        match sim.wait(id) {
            Ok(Reply::Value(v)) => {
                assert_eq!(v, Value::Bulk(Bytes::from(format!("v-{k}"))), "never a wrong value")
            }
            Ok(other) => panic!("unexpected reply {other:?}"),
            Err(RequestError::Unreachable { .. } | RequestError::ConnectionLost { .. }) => failed += 1,
            Err(e) => panic!("untyped or unexpected failure for {k}: {e}"),
        }
    }
    assert!(failed < keys.len() / 3 + 1, "only the dead shard's requests may fail: {failed}");
    // Shortly after, everything is served by the promoted replica.
    sim.run_for(Duration::from_millis(200));
    for k in &keys {
        let v = sim.call(Cmd::new("GET").arg(k.as_str())).expect("served after promotion");
        assert_eq!(v, Value::Bulk(Bytes::from(format!("v-{k}"))));
    }
    assert!(sim.client.stats().refreshes >= 2);
}

/// A command addressed to one node is not redirected: after a failover the old primary's
/// `MOVED` is the request's answer at once (not a redirect loop on the same node until the
/// deadline), and the client still patches its map and refreshes.
#[test]
fn a_command_addressed_to_a_demoted_primary_answers_its_moved() {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), 13);
    let keys = warm(&mut sim, 20);
    sim.run_for(Duration::from_secs(1));
    sim.cluster.failover(&addr(3));
    let k =
        keys.iter().find(|k| slotcache_core::key_slot(k.as_bytes()).get() < 5461).expect("a key of shard 0");
    let started = sim.elapsed();
    let id = sim.submit(Request::node(addr(0), Cmd::new("GET").arg(k.as_str())));
    match sim.wait(id) {
        Err(RequestError::Server(e)) => assert!(e.to_string().starts_with("MOVED "), "{e}"),
        other => panic!("expected the node's MOVED, got {other:?}"),
    }
    assert!(sim.elapsed() - started < Duration::from_millis(100), "answered at once");
    assert_eq!(sim.client.stats().moved, 1);
    sim.run_for(Duration::from_millis(200));
    let t = sim.client.topology().expect("topology");
    assert_eq!(t.primary(Slot::new(0).expect("slot")).map(|n| n.addr.clone()), Some(addr(3)), "refreshed");
}

/// A slot migrated away and met by a request: the `MOVED` patches the client's map at once,
/// and the refresh it triggers finds the same map. The next `TopologyChanged` still reports the
/// slot (an observer that only sees refreshed topologies, such as the async layer's snapshot
/// that the cache's search plans from, or an L1 cache dropping entries of moved slots, would
/// otherwise never hear of it).
#[test]
fn a_slot_patched_by_moved_is_reported_by_the_next_topology_event() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 14);
    let keys = warm(&mut sim, 20);
    sim.run_for(Duration::from_secs(1));
    let k =
        keys.iter().find(|k| slotcache_core::key_slot(k.as_bytes()).get() < 5461).expect("a key of shard 0");
    let slot = slotcache_core::key_slot(k.as_bytes());
    let events_before = sim.events.len();
    sim.cluster.migrate_slot_atomic(slot, &addr(1));
    let v = sim.call(Cmd::new("GET").arg(k.as_str())).expect("get after the move");
    assert_eq!(v, Value::Bulk(Bytes::from(format!("v-{k}"))));
    assert_eq!(sim.client.stats().moved, 1);
    sim.run_for(Duration::from_millis(500));
    let changed: Vec<_> = sim.events[events_before..]
        .iter()
        .filter_map(|e| match e {
            slotcache_core::client::Event::TopologyChanged { changed, .. } => Some(changed.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(changed.len(), 1, "one event for the refresh: {changed:?}");
    assert_eq!(changed[0], [slotcache_core::SlotRange::single(slot)]);
}
