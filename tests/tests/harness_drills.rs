//! Failure drills on real clusters: each test shows the cluster really did it.

use std::time::{Duration, Instant};

use slotcache_core::key_slot;
use slotcache_tests::{ClusterBuilder, DRILL_TIMEOUT, FailoverMode, Role, resp};

fn fast_cluster(label: &str) -> slotcache_tests::Cluster {
    ClusterBuilder::new().node_timeout(Duration::from_millis(1000)).label(label).start().unwrap()
}

#[test]
fn sigkill_master_replica_takes_over_and_old_master_rejoins_as_replica() {
    let mut c = fast_cluster("drill-kill");
    let key = c.key_owned_by(0, "k").unwrap();
    let slot = key_slot(key.as_bytes()).get();
    assert_eq!(c.cmd_text(0, ["SET", key.as_str(), "before"]).unwrap(), "OK");
    // Make sure the replica has it before the master dies.
    assert_eq!(c.cmd(0, ["WAIT", "1", "5000"]).unwrap().as_int(), Some(1));

    let dead_pid = c.node(0).pid().unwrap();
    let t0 = Instant::now();
    c.kill(0).unwrap();
    assert!(!slotcache_tests::procs::alive(dead_pid));
    c.wait_promoted(3, DRILL_TIMEOUT).unwrap();
    let failover = t0.elapsed();
    eprintln!("[timing] failover after SIGKILL of a master (node timeout 1000 ms): {failover:?}");
    assert!(failover >= Duration::from_millis(1000), "no failover before the node timeout");

    assert_eq!(c.role(3).unwrap(), Role::Master);
    for v in c.live() {
        assert_eq!(c.slot_owner_seen_by(v, slot).unwrap(), Some(3), "view of node {v}");
    }
    assert_eq!(c.cmd_text(3, ["GET", key.as_str()]).unwrap(), "before");
    let moved = resp::redirect(&c.cmd(1, ["GET", key.as_str()]).unwrap()).unwrap();
    assert_eq!(c.index_of_addr(&moved.addr), Some(3));

    let t1 = Instant::now();
    c.restart(0).unwrap();
    c.wait_replica_of(0, 3, DRILL_TIMEOUT).unwrap();
    c.wait_healthy(DRILL_TIMEOUT).unwrap();
    eprintln!("[timing] restarted old master synced as a replica in {:?}", t1.elapsed());
    assert_eq!(c.role(0).unwrap(), Role::Replica);
    let shard = c.shards(1).unwrap().into_iter().find(|s| s.serves(slot)).unwrap();
    let me = shard.nodes.iter().find(|n| n.id == c.node(0).id()).unwrap();
    assert_eq!(me.role, Role::Replica);
    assert_eq!(shard.master().unwrap().id, c.node(3).id());
}

#[test]
fn paused_master_is_failed_over_and_demoted_when_resumed() {
    let mut c = fast_cluster("drill-pause");
    let t0 = Instant::now();
    c.pause(1).unwrap();
    assert_eq!(slotcache_tests::procs::state(c.node(1).pid().unwrap()), Some('T'));
    // A paused node does not answer.
    assert!(
        slotcache_tests::Conn::connect_with(&c.node(1).addr(), None, Duration::from_millis(300))
            .and_then(|mut conn| conn.cmd(["PING"]))
            .is_err()
    );
    c.wait_promoted(4, DRILL_TIMEOUT).unwrap();
    eprintln!("[timing] failover of a SIGSTOPped master: {:?}", t0.elapsed());

    c.resume(1).unwrap();
    let d = c.wait_replica_of(1, 4, DRILL_TIMEOUT).unwrap();
    c.wait_healthy(DRILL_TIMEOUT).unwrap();
    eprintln!("[timing] resumed old master became a replica after {d:?}");
    assert_eq!(c.role(1).unwrap(), Role::Replica);
    assert_eq!(c.role(4).unwrap(), Role::Master);
}

#[test]
fn manual_failover_default_force_and_takeover() {
    let c = fast_cluster("drill-manual");
    for (m, mode) in [(0, FailoverMode::Default), (1, FailoverMode::Force), (2, FailoverMode::Takeover)] {
        let r = m + 3;
        let key = c.key_owned_by(m, "manual").unwrap();
        assert_eq!(c.cmd_text(m, ["SET", key.as_str(), "kept"]).unwrap(), "OK");
        assert_eq!(c.cmd(m, ["WAIT", "1", "5000"]).unwrap().as_int(), Some(1));
        let d = c.failover(r, mode).unwrap();
        eprintln!("[timing] CLUSTER FAILOVER {mode:?}: roles flipped in {d:?}");
        assert_eq!(c.role(r).unwrap(), Role::Master, "{mode:?}");
        assert_eq!(c.role(m).unwrap(), Role::Replica, "{mode:?}");
        assert_eq!(c.master_of(m).unwrap(), Some(r));
        assert_eq!(c.cmd_text(r, ["GET", key.as_str()]).unwrap(), "kept");
        let moved = resp::redirect(&c.cmd(m, ["GET", key.as_str()]).unwrap()).unwrap();
        assert_eq!(c.index_of_addr(&moved.addr), Some(r));
    }
    c.wait_healthy(DRILL_TIMEOUT).unwrap();
    assert_eq!(c.masters().unwrap(), vec![3, 4, 5]);
}
