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

/// Found on a real Valkey 9 cluster (`conformance_readonly`): a client reading from replicas
/// used to send `READONLY` on every connection. After a failover it did not yet know of, a
/// writing script (`EVAL`, which the server does not count as a write command) for the demoted
/// primary's slots ran there as on any replica for a `READONLY` connection, and its `SET` was
/// refused with `ERR ... non local key in a cluster node`, an error the client cannot act on.
/// `READONLY` now goes only to nodes the topology lists as replicas, so the demoted primary
/// answers the script `MOVED`, which the client follows.
#[test]
fn a_writing_script_reaches_the_new_primary_when_reads_go_to_replicas() {
    const SCRIPT: &str = "return redis.call('SET', KEYS[1], ARGV[1])";
    let mut cluster = SimCluster::new(3, 1);
    cluster.scripts.register("test-set", SCRIPT, |cx, keys, argv| cx.call(&[b"SET", &keys[0], &argv[0]]));
    let mut cfg = Sim::config();
    cfg.read_from = slotcache_core::client::ReadFrom::PreferReplica;
    let mut sim = Sim::new(cluster, cfg, 15);
    let keys = warm(&mut sim, 20);
    let k =
        keys.iter().find(|k| slotcache_core::key_slot(k.as_bytes()).get() < 5461).expect("a key of shard 0");
    let eval = |v: &str| Cmd::new("EVAL").arg(SCRIPT).arg(1).arg(k.as_str()).arg(v);
    assert_eq!(sim.call(eval("before")).expect("EVAL").as_str(), Some("OK"));
    sim.run_for(Duration::from_secs(1));
    // Reads of shard 0 go to its replica, node 3, once replicated.
    assert_eq!(sim.call(Cmd::new("GET").arg(k.as_str())).expect("GET"), Value::Bulk(Bytes::from("before")));
    sim.cluster.failover(&addr(3)); // node 0 is now node 3's replica; the client is not told
    let v = sim.call(eval("after")).expect("a writing script after the failover");
    assert_eq!(v.as_str(), Some("OK"));
    assert_eq!(sim.cluster.get(&addr(3), k.as_bytes()), Some(Bytes::from("after")), "on the new primary");
    assert!(sim.client.stats().moved >= 1, "the demoted primary answered MOVED: {:?}", sim.client.stats());
}
