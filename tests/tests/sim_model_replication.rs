//! Simulation model: asynchronous replication. Writes reach replicas after their lag; `WAIT`
//! counts replicas that applied the connection's last write (at once, when they catch up, or at
//! its timeout); a failover or a crash keeps exactly what the promoted replica had applied, so
//! the primary's unreplicated tail is lost; a restart without persistence empties a primary and,
//! through resynchronisation, its replica.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::client::{Cmd, Reply, Request};
use slotcache_core::{Value, key_slot};
use slotcache_tests::sim::{Sim, SimCluster, addr};

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// One primary (node 0) and one replica (node 1) with `lag`.
fn pair(lag_ms: u64, seed: u64) -> Sim {
    let mut c = SimCluster::new(1, 1);
    c.set_replication_lag(&addr(1), Duration::from_millis(lag_ms), Duration::ZERO);
    Sim::new(c, Sim::config(), seed)
}

/// `SET key value` then `WAIT replicas timeout_ms` on the same connection; the WAIT's reply.
fn set_and_wait(sim: &mut Sim, key: &str, value: &str, replicas: u32, timeout_ms: u64) -> Value {
    let slot = key_slot(key.as_bytes());
    let id = sim.submit(Request::pipeline(vec![
        Cmd::new("SET").arg(key).arg(value),
        Cmd::new("WAIT").arg(replicas).arg(timeout_ms).with_slot(slot).with_read_only(false),
    ]));
    let Reply::Pipeline(r) = sim.wait(id).expect("pipeline") else { panic!("pipeline reply") };
    assert_eq!(r[0].as_ref().expect("set"), &Value::Simple(Bytes::from_static(b"OK")));
    r[1].clone().expect("wait")
}

#[test]
fn a_write_not_yet_replicated_is_lost_when_the_primary_crashes() {
    // Two shards; node 2 replicates node 0.
    let mut c = SimCluster::new(2, 1);
    c.set_replication_lag(&addr(2), Duration::from_millis(50), Duration::ZERO);
    let mut sim = Sim::new(c, Sim::config(), 1);
    sim.enable_trace(200);
    let (old, new) = ("{n0}old", "{n0}new");
    assert_eq!(sim.cluster.owner_of(old.as_bytes()), addr(0), "keys on node 0");
    sim.call(Cmd::new("SET").arg(old).arg("1")).expect("set");
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.cluster.get(&addr(2), old.as_bytes()), Some(Bytes::from("1")), "replicated after the lag");
    sim.call(Cmd::new("SET").arg(new).arg("2")).expect("set acknowledged by the primary");
    assert_eq!(sim.cluster.get(&addr(2), new.as_bytes()), None, "still in flight to the replica");
    let promoted = sim.crash_primary(&addr(0)).expect("a replica to promote");
    assert_eq!(promoted, addr(2));
    // The first request after the crash may fail (the client learns of the promotion from it).
    let _ = sim.call(Cmd::new("GET").arg(old));
    sim.run_for(Duration::from_millis(200));
    let got = sim.call(Cmd::new("GET").arg(old));
    assert_eq!(got.unwrap_or_else(|e| panic!("{e}\n{}", sim.trace_dump())), bulk("1"));
    assert_eq!(sim.call(Cmd::new("GET").arg(new)).expect("get"), Value::Nil, "the unreplicated tail is gone");
    // The old primary comes back as a replica of the new one, without the lost write.
    sim.restart(&addr(0), true);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.cluster.nodes[&addr(0)].replica_of, Some(addr(2)));
    assert_eq!(sim.cluster.get(&addr(0), new.as_bytes()), None, "full resync dropped the diverged write");
    assert_eq!(sim.cluster.get(&addr(0), old.as_bytes()), Some(Bytes::from("1")));
}

/// Found with the simulator: once the client had a topology it asked only the primaries it
/// knew for the next one (`refresh_candidates` in core/src/client/refresh.rs), so when every
/// primary it knew was dead (a one-shard cluster here) it never asked the promoted replica,
/// which it knew, nor its seeds, and every request failed `Unreachable` for good. A run of
/// failed refreshes now walks the primaries, then the replicas, then the seeds.
#[test]
fn single_shard_promotion_is_discovered() {
    let mut sim = pair(1, 8);
    sim.call(Cmd::new("SET").arg("k").arg("v")).expect("set");
    sim.run_for(Duration::from_millis(10));
    sim.crash_primary(&addr(0)).expect("promoted");
    let _ = sim.call(Cmd::new("GET").arg("k"));
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.call(Cmd::new("GET").arg("k")).expect("served by the promoted replica"), bulk("v"));
}

#[test]
fn wait_counts_zero_with_a_frozen_replica_and_one_after_it_catches_up() {
    let mut sim = pair(1, 2);
    sim.call(Cmd::new("SET").arg("warm").arg("x")).expect("warm up the connection");
    sim.cluster.freeze_replica(&addr(1), true);
    let t = sim.now;
    assert_eq!(set_and_wait(&mut sim, "k", "v1", 1, 150), Value::Int(0), "frozen replica never acks");
    let waited = sim.now - t;
    assert!(waited >= Duration::from_millis(150) && waited < Duration::from_millis(160), "{waited:?}");
    assert_eq!(sim.cluster.get(&addr(1), b"k"), None);
    sim.cluster.freeze_replica(&addr(1), false);
    sim.run_for(Duration::from_millis(5));
    assert_eq!(sim.cluster.get(&addr(1), b"k"), Some(Bytes::from("v1")), "thawed replica caught up");
    let t = sim.now;
    assert_eq!(set_and_wait(&mut sim, "k", "v2", 1, 1000), Value::Int(1));
    assert!(sim.now - t < Duration::from_millis(5), "released as soon as the replica applied it");
    // Asking for more replicas than exist waits for the timeout and reports those that acked.
    assert_eq!(set_and_wait(&mut sim, "k", "v3", 2, 50), Value::Int(1));
}

#[test]
fn wait_is_released_when_a_lagging_replica_applies_the_write() {
    let mut sim = pair(40, 3);
    sim.call(Cmd::new("SET").arg("warm").arg("x")).expect("warm up");
    let t = sim.now;
    assert_eq!(set_and_wait(&mut sim, "k", "v", 1, 1000), Value::Int(1));
    let waited = sim.now - t;
    assert!(waited >= Duration::from_millis(40) && waited < Duration::from_millis(45), "{waited:?}");
    // WAIT 0 answers at once.
    assert_eq!(set_and_wait(&mut sim, "k", "w", 0, 0), Value::Int(0));
}

#[test]
fn forced_failover_with_the_old_primary_up_loses_its_tail_everywhere() {
    let mut c = SimCluster::new(1, 2);
    c.set_replication_lag(&addr(1), Duration::from_millis(1), Duration::ZERO);
    c.set_replication_lag(&addr(2), Duration::from_millis(1), Duration::ZERO);
    let mut sim = Sim::new(c, Sim::config(), 4);
    sim.call(Cmd::new("SET").arg("a").arg("1")).expect("set");
    sim.run_for(Duration::from_millis(10));
    sim.cluster.freeze_replica(&addr(1), true);
    sim.call(Cmd::new("SET").arg("b").arg("2")).expect("set");
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.cluster.get(&addr(2), b"b"), Some(Bytes::from("2")), "the other replica has it");
    // Promote the frozen (behind) replica: node 2 is ahead of it and must resync too.
    sim.cluster.failover(&addr(1));
    sim.run_for(Duration::from_millis(10));
    for n in [addr(0), addr(1), addr(2)] {
        assert_eq!(sim.cluster.get(&n, b"b"), None, "{n} lost the write");
        assert_eq!(sim.cluster.get(&n, b"a"), Some(Bytes::from("1")), "{n} kept the replicated one");
    }
    assert_eq!(sim.cluster.nodes[&addr(2)].replica_of, Some(addr(1)));
    // The new primary replicates to the others.
    sim.call(Cmd::new("SET").arg("c").arg("3")).expect("set on the new primary");
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.cluster.get(&addr(0), b"c"), Some(Bytes::from("3")));
    assert_eq!(sim.cluster.get(&addr(2), b"c"), Some(Bytes::from("3")));
}

#[test]
fn manual_failover_loses_nothing() {
    let mut sim = pair(1000, 5);
    sim.call(Cmd::new("SET").arg("a").arg("1")).expect("set");
    sim.cluster.manual_failover(&addr(1));
    assert_eq!(sim.cluster.get(&addr(1), b"a"), Some(Bytes::from("1")));
}

#[test]
fn restart_without_persistence_empties_the_primary_and_its_replica() {
    let mut sim = pair(1, 6);
    sim.call(Cmd::new("SET").arg("a").arg("1")).expect("set");
    sim.run_for(Duration::from_millis(10));
    sim.restart(&addr(0), true);
    sim.run_for(Duration::from_millis(50));
    assert_eq!(sim.call(Cmd::new("GET").arg("a")).expect("get"), bulk("1"), "persistence on: kept");
    sim.restart(&addr(0), false);
    sim.run_for(Duration::from_millis(50));
    assert_eq!(sim.call(Cmd::new("GET").arg("a")).expect("get"), Value::Nil, "persistence off: gone");
    assert_eq!(sim.cluster.get(&addr(1), b"a"), None, "the replica resynced to the empty primary");
}

#[test]
fn info_reports_replication_offsets() {
    let mut sim = pair(20, 7);
    sim.call(Cmd::new("SET").arg("a").arg("1")).expect("set");
    let info = |sim: &mut Sim, n| {
        let v = sim.call_node(&addr(n), Cmd::new("INFO").arg("replication")).expect("info");
        String::from_utf8(v.as_bytes().expect("text").to_vec()).expect("utf8")
    };
    let field = |text: &str, name: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok()).expect(name)
    };
    let p = info(&mut sim, 0);
    assert!(p.contains("role:master"), "{p}");
    let off = field(&p, "master_repl_offset");
    assert!(off > 0);
    let r = info(&mut sim, 1);
    assert!(r.contains("role:slave"), "{r}");
    assert!(field(&r, "slave_repl_offset") < off, "the replica lags: {r}");
    sim.run_for(Duration::from_millis(30));
    let r = info(&mut sim, 1);
    assert_eq!(field(&r, "slave_repl_offset"), off);
}
