//! Simulation model: expiry on the simulated clock. A key set with `PX` is there until the
//! instant it expires and absent from then on; TTLs shrink as virtual time passes; `TIME`
//! follows virtual time plus each node's skew; primaries remove expired keys on their own (the
//! active cycle) and replicate the deletions; a replica hides an expired key even before the
//! deletion reaches it.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::Value;
use slotcache_core::client::{Cmd, Reply, Request};
use slotcache_tests::sim::{EPOCH_US, Sim, SimCluster, addr};

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn int(v: Value) -> i64 {
    v.as_int().expect("integer reply")
}

#[test]
fn px_expires_at_the_virtual_instant() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 21);
    sim.call(Cmd::new("SET").arg("k").arg("v").arg("PX").arg(100)).expect("set");
    let pttl = int(sim.call(Cmd::new("PTTL").arg("k")).expect("pttl"));
    assert!((99..=100).contains(&pttl), "{pttl}");
    sim.run_for(Duration::from_millis(90));
    assert_eq!(sim.call(Cmd::new("GET").arg("k")).expect("get"), bulk("v"));
    let ttl = int(sim.call(Cmd::new("PTTL").arg("k")).expect("pttl"));
    assert!((8..=10).contains(&ttl), "TTL shrinks with virtual time: {ttl}");
    sim.run_for(Duration::from_millis(11));
    assert_eq!(sim.call(Cmd::new("GET").arg("k")).expect("get"), Value::Nil);
    assert_eq!(int(sim.call(Cmd::new("PTTL").arg("k")).expect("pttl")), -2);
    // PEXPIRE GT/LT and PERSIST through the client.
    sim.call(Cmd::new("SET").arg("k").arg("v").arg("EX").arg(10)).expect("set");
    assert_eq!(int(sim.call(Cmd::new("PEXPIRE").arg("k").arg(5000).arg("GT")).expect("gt")), 0);
    assert_eq!(int(sim.call(Cmd::new("PEXPIRE").arg("k").arg(5000).arg("LT")).expect("lt")), 1);
    assert_eq!(int(sim.call(Cmd::new("PERSIST").arg("k")).expect("persist")), 1);
    sim.run_for(Duration::from_secs(6));
    assert_eq!(sim.call(Cmd::new("GET").arg("k")).expect("get"), bulk("v"), "persisted");
}

#[test]
fn time_follows_virtual_time_and_each_nodes_skew() {
    let mut c = SimCluster::new(2, 0);
    c.nodes.get_mut(&addr(1)).expect("node").clock_skew_ms = 5_000;
    let mut sim = Sim::new(c, Sim::config(), 22);
    sim.run_for(Duration::from_secs(3));
    let time = |sim: &mut Sim, n| -> u64 {
        let Value::Array(v) = sim.call_node(&addr(n), Cmd::new("TIME")).expect("time") else {
            panic!("array")
        };
        let f = |i: usize| -> u64 {
            std::str::from_utf8(v[i].as_bytes().expect("bulk")).expect("utf8").parse().expect("n")
        };
        f(0) * 1_000_000 + f(1)
    };
    let t0 = time(&mut sim, 0);
    let t1 = time(&mut sim, 1);
    let since = t0 - EPOCH_US;
    assert!((3_000_000..3_010_000).contains(&since), "node 0 is at virtual time: {since}");
    let skew = t1 as i64 - t0 as i64;
    assert!((4_990_000..5_010_000).contains(&skew), "node 1 is 5 s ahead: {skew}");
}

#[test]
fn active_expiry_removes_keys_and_replicates_the_deletions() {
    let mut c = SimCluster::new(1, 1);
    c.set_replication_lag(&addr(1), Duration::from_millis(1), Duration::ZERO);
    let mut sim = Sim::new(c, Sim::config(), 23);
    let cmds: Vec<Cmd> =
        (0..100).map(|i| Cmd::new("SET").arg(format!("e{i}")).arg("v").arg("PX").arg(50)).collect();
    let id = sim.submit(Request::pipeline(cmds));
    let Reply::Pipeline(r) = sim.wait(id).expect("pipeline") else { panic!() };
    assert!(r.iter().all(Result::is_ok));
    sim.call(Cmd::new("SET").arg("keep").arg("v")).expect("set");
    sim.run_for(Duration::from_millis(20));
    assert_eq!(sim.cluster.nodes[&addr(1)].data.len(), 101, "replicated");
    // Freeze the replica: it still hides the expired keys from readers.
    sim.cluster.freeze_replica(&addr(1), true);
    sim.run_for(Duration::from_millis(250));
    assert_eq!(sim.cluster.get(&addr(1), b"e1"), None, "expired on the replica's clock");
    assert_eq!(sim.cluster.nodes[&addr(1)].data.len(), 101, "but not deleted there yet");
    // Nobody touched the keys: the primary's active cycle deleted them.
    assert_eq!(sim.call_node(&addr(0), Cmd::new("DBSIZE")).expect("dbsize"), Value::Int(1));
    assert_eq!(sim.cluster.nodes[&addr(0)].expired, 100);
    sim.cluster.freeze_replica(&addr(1), false);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.cluster.nodes[&addr(1)].data.len(), 1, "the deletions were replicated");
}

#[test]
fn scan_walks_a_nodes_keys_with_match_and_count() {
    let mut sim = Sim::new(SimCluster::new(1, 0), Sim::config(), 24);
    for i in 0..50 {
        sim.call(Cmd::new("SET").arg(format!("a:{i}")).arg("v")).expect("set");
        sim.call(Cmd::new("ZADD").arg(format!("z:{i}")).arg(1).arg("m")).expect("zadd");
    }
    let mut cursor = "0".to_owned();
    let mut seen = Vec::new();
    loop {
        let cmd = Cmd::new("SCAN").arg(cursor.as_str()).arg("MATCH").arg("a:*").arg("COUNT").arg(7);
        let Value::Array(r) = sim.call_node(&addr(0), cmd).expect("scan") else { panic!() };
        let Value::Array(keys) = &r[1] else { panic!() };
        seen.extend(keys.iter().map(|k| k.as_bytes().expect("key").clone()));
        cursor = String::from_utf8(r[0].as_bytes().expect("cursor").to_vec()).expect("utf8");
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 50);
    assert!(seen.iter().all(|k| k.starts_with(b"a:")));
}
