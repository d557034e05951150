//! Simulation: a standalone node (cluster support disabled), its detection and its refreshes.
//!
//! - [`Mode::Auto`] (the default) sees `CLUSTER SHARDS` refused with "cluster support disabled",
//!   asks `INFO` on the same connection, and routes every slot to the one primary: keys in every
//!   slot, multi-key commands split per slot and merged, a fan-out that reaches the one
//!   primary, and never a redirect.
//! - Reads go to the primary's replica with `ReadFrom::PreferReplica`, without `READONLY` (a
//!   standalone replica refuses it, as Redis 7 does; the refusal is ignored).
//! - [`Mode::Standalone`] sends no `CLUSTER` command and no `READONLY` at all.
//! - Refreshes re-read the node's replicas (one that came back is used again), and an
//!   operator's promotion of the replica (`REPLICAOF NO ONE`) is followed: the write the old
//!   primary refuses with `READONLY` is retried on the new one.
//! - `WAIT` after a write counts the standalone replica; with the replica frozen it times out.
//! - A node of the other kind than the configured mode fails the waiting request at once with
//!   `ModeMismatch`.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::cache::Durability;
use slotcache_core::client::{Cmd, Mode, ReadFrom, Reply, Request, RequestError};
use slotcache_core::{Value, key_slot};
use slotcache_tests::sim::{Sim, SimCluster, addr};

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn auto_mode_detects_a_standalone_node_and_serves_every_slot() {
    let mut sim = Sim::new(SimCluster::standalone(1), Sim::config(), 1);
    let keys: Vec<String> = (0..300).map(|i| format!("key:{i}")).collect();
    for k in &keys {
        sim.call(Cmd::new("SET").arg(k.as_str()).arg(format!("v-{k}"))).expect("set");
    }
    for k in &keys {
        assert_eq!(sim.call(Cmd::new("GET").arg(k.as_str())).expect("get"), bulk(&format!("v-{k}")));
    }
    let mut mget = Cmd::new("MGET");
    for k in &keys {
        mget.push_arg(k.as_str());
    }
    let slots: std::collections::BTreeSet<_> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
    assert!(slots.len() > 250, "the keys span many slots");
    let Value::Array(values) = sim.call(mget).expect("mget") else { panic!("array") };
    assert_eq!(values, keys.iter().map(|k| bulk(&format!("v-{k}"))).collect::<Vec<_>>());
    let id = sim.submit(Request::all_primaries(Cmd::new("DBSIZE")));
    let Reply::PerNode(per) = sim.wait(id).expect("fan-out") else { panic!("per node") };
    assert_eq!(per.len(), 1, "every primary is the one node");
    assert_eq!(per[0].0, addr(0));
    assert_eq!(per[0].1.as_ref().expect("DBSIZE"), &Value::Int(300));

    let t = sim.client.topology().expect("a topology");
    assert!(t.is_standalone() && t.is_fully_covered());
    assert_eq!(t.shards().len(), 1);
    assert_eq!(t.shards()[0].primary.addr, addr(0));
    assert_eq!(t.shards()[0].replicas.iter().map(|r| r.addr.clone()).collect::<Vec<_>>(), [addr(1)]);
    assert!(t.shards()[0].replicas[0].is_online());
    let stats = sim.client.stats();
    assert_eq!((stats.moved, stats.ask, stats.refresh_failures), (0, 0, 0), "{stats:?}");
    assert_eq!(sim.cluster.count_all("CLUSTER SHARDS"), 1, "asked once, refused");
    assert_eq!(sim.cluster.count_all("CLUSTER SLOTS"), 0, "no CLUSTER SLOTS fallback");
    assert_eq!(sim.cluster.count_all("INFO"), 1, "then INFO, once");
    assert_eq!(sim.cluster.nodes[&addr(0)].data.len(), 300, "every key on the primary");
}

#[test]
fn replica_reads_go_to_the_replica_in_auto_and_standalone_modes() {
    for mode in [Mode::Auto, Mode::Standalone] {
        let mut cfg = Sim::config();
        cfg.read_from = ReadFrom::PreferReplica;
        cfg.mode = mode;
        let mut sim = Sim::new(SimCluster::standalone(1), cfg, 2);
        for i in 0..50 {
            sim.call(Cmd::new("SET").arg(format!("r:{i}")).arg(i.to_string())).expect("set");
        }
        sim.run_for(Duration::from_millis(50)); // replication lag
        for i in 0..50 {
            assert_eq!(sim.call(Cmd::new("GET").arg(format!("r:{i}"))).expect("get"), bulk(&i.to_string()));
        }
        assert_eq!(sim.cluster.count(&addr(1), "GET"), 50, "{mode}: reads served by the replica");
        assert_eq!(sim.cluster.count(&addr(0), "GET"), 0, "{mode}");
        assert_eq!(sim.cluster.count(&addr(0), "SET"), 50, "{mode}: writes by the primary");
        let cluster_commands = sim.cluster.count_all("CLUSTER SHARDS") + sim.cluster.count_all("READONLY");
        if mode == Mode::Standalone {
            assert_eq!(cluster_commands, 0, "standalone mode sends no CLUSTER and no READONLY");
        } else {
            assert!(cluster_commands > 0, "auto mode asks, and its READONLY refusals are ignored");
        }
        assert_eq!(sim.client.stats().moved, 0);
    }
}

#[test]
fn refreshes_reread_the_replicas() {
    let mut cfg = Sim::config();
    cfg.read_from = ReadFrom::PreferReplica;
    cfg.refresh.periodic = Some(Duration::from_millis(500));
    let mut cluster = SimCluster::standalone(2);
    cluster.nodes.get_mut(&addr(2)).expect("replica").up = false;
    let mut sim = Sim::new(cluster, cfg, 3);
    sim.call(Cmd::new("SET").arg("k").arg("v")).expect("set");
    let replicas = |sim: &Sim| -> Vec<_> {
        sim.client
            .topology()
            .map(|t| t.shards()[0].replicas.iter().map(|r| r.addr.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(replicas(&sim), [addr(1)], "a disconnected replica is not listed");
    sim.restart(&addr(2), true);
    assert!(
        sim.run_until(Duration::from_secs(2), |s| replicas(s).len() == 2),
        "the periodic refresh finds the replica again: {:?}",
        replicas(&sim)
    );
    sim.run_for(Duration::from_millis(50));
    for _ in 0..100 {
        assert_eq!(sim.call(Cmd::new("GET").arg("k")).expect("get"), bulk("v"));
    }
    let (r1, r2) = (sim.cluster.count(&addr(1), "GET"), sim.cluster.count(&addr(2), "GET"));
    assert!(r1 > 10 && r2 > 10, "reads spread over both replicas: {r1} and {r2}");
}

#[test]
fn an_operators_promotion_is_followed() {
    let mut sim = Sim::new(SimCluster::standalone(1), Sim::config(), 4);
    sim.call(Cmd::new("SET").arg("before").arg("1")).expect("set");
    // Past the refresh policy's minimum interval since the start-up refresh.
    sim.run_for(Duration::from_millis(200));
    // REPLICAOF NO ONE on the replica, REPLICAOF on the old primary.
    sim.cluster.manual_failover(&addr(1));
    sim.call(Cmd::new("SET").arg("after").arg("2")).expect("the refused write is retried on the new primary");
    assert_eq!(
        sim.cluster.get(&addr(1), b"after"),
        Some(Bytes::from_static(b"2")),
        "written on the new primary"
    );
    let t = sim.client.topology().expect("topology");
    assert_eq!(t.shards()[0].primary.addr, addr(1), "the new primary");
    sim.run_for(Duration::from_millis(500));
    let t = sim.client.topology().expect("topology");
    assert_eq!(t.shards()[0].replicas.iter().map(|r| r.addr.clone()).collect::<Vec<_>>(), [addr(0)]);
    assert_eq!(sim.call(Cmd::new("GET").arg("before")).expect("get"), bulk("1"));
    assert_eq!(sim.client.stats().moved, 0);
}

#[test]
fn wait_counts_the_standalone_replica() {
    let mut sim = Sim::new(SimCluster::standalone(1), Sim::config(), 5);
    sim.call(Cmd::new("PING")).expect("ping");
    let slot = key_slot(b"k");
    let wait = Durability::default().wait_for(slot, sim.client.topology());
    assert_eq!(wait, Some((1, 250)), "the listed replica is waited for");
    let write_and_wait = |sim: &mut Sim| {
        let id = sim.submit(Request::pipeline(vec![
            Cmd::new("SET").arg("k").arg("v"),
            Cmd::new("WAIT").arg(1).arg(100).with_slot(key_slot(b"k")).after(0),
        ]));
        let Reply::Pipeline(r) = sim.wait(id).expect("pipeline") else { panic!("pipeline") };
        r[1].clone().expect("WAIT")
    };
    assert_eq!(write_and_wait(&mut sim), Value::Int(1), "acknowledged by the replica");
    sim.cluster.freeze_replica(&addr(1), true);
    assert_eq!(write_and_wait(&mut sim), Value::Int(0), "a frozen replica does not acknowledge");

    // A replica that disconnected is no longer listed after a refresh: nothing to wait for.
    sim.kill(&addr(1));
    let now = sim.now;
    sim.client.request_refresh(now, slotcache_core::RefreshReason::Manual);
    sim.call(Cmd::new("PING")).expect("ping"); // drains the client's outputs
    assert!(sim.run_until(Duration::from_secs(1), |s| {
        s.client.topology().is_some_and(|t| t.shards()[0].replicas.is_empty())
    }));
    assert_eq!(Durability::default().wait_for(slot, sim.client.topology()), None);
}

#[test]
fn a_node_of_the_other_kind_is_refused_at_once() {
    let mut cfg = Sim::config();
    cfg.mode = Mode::Cluster;
    cfg.request_timeout = Duration::from_secs(10);
    let mut sim = Sim::new(SimCluster::standalone(0), cfg, 6);
    let t = sim.elapsed();
    let e = sim.call(Cmd::new("GET").arg("k")).expect_err("refused");
    assert_eq!(
        e,
        RequestError::ModeMismatch { addr: addr(0), configured: Mode::Cluster, found: Mode::Standalone }
    );
    assert!(
        sim.elapsed() - t < Duration::from_millis(100),
        "at once, not at the deadline: {:?}",
        sim.elapsed() - t
    );

    let mut cfg = Sim::config();
    cfg.mode = Mode::Standalone;
    cfg.request_timeout = Duration::from_secs(10);
    let mut sim = Sim::new(SimCluster::new(3, 0), cfg, 7);
    let e = sim.call(Cmd::new("GET").arg("k")).expect_err("refused");
    assert!(
        matches!(e, RequestError::ModeMismatch { found: Mode::Cluster, configured: Mode::Standalone, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("is a cluster node but the client's mode is standalone"), "{e}");
    assert_eq!(sim.cluster.count_all("CLUSTER SHARDS"), 0);
}
