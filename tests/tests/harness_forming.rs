//! Forming clusters of several shapes, and what a formed cluster looks like from outside.

use std::time::Duration;

use slotcache_core::key_slot;
use slotcache_tests::{ClusterBuilder, Role, resp, wait_until};

#[test]
fn three_masters_three_replicas_form_and_route() {
    let c = ClusterBuilder::new().label("form-3x1").start().unwrap();
    let t = c.timings();
    eprintln!(
        "[timing] 3+3 formed: processes up {:?}, cluster_state ok {:?}, ready {:?}",
        t.processes_up, t.state_ok, t.ready
    );
    assert_eq!(c.nodes().len(), 6);
    assert!(t.processes_up <= t.state_ok && t.state_ok <= t.ready);

    // Roles from INFO replication: 0..3 masters, 3..6 replicas of 0..3.
    for i in 0..3 {
        assert_eq!(c.role(i).unwrap(), Role::Master, "node {i}");
        assert_eq!(c.replicas_of(i).unwrap(), vec![i + 3]);
    }
    for i in 3..6 {
        assert_eq!(c.role(i).unwrap(), Role::Replica, "node {i}");
        assert_eq!(c.master_of(i).unwrap(), Some(i - 3));
    }

    // CLUSTER SHARDS from every node: 3 shards of 1 master + 1 online replica, covering every
    // slot exactly once.
    for v in 0..6 {
        let shards = c.shards(v).unwrap();
        assert_eq!(shards.len(), 3, "view of node {v}");
        let mut covered = vec![0u8; 16384];
        for s in &shards {
            for &(lo, hi) in &s.slots {
                for x in lo..=hi {
                    covered[usize::from(x)] += 1;
                }
            }
            assert_eq!(s.nodes.len(), 2);
            assert!(s.nodes.iter().all(|n| n.health == "online" && n.ip == "127.0.0.1"));
            assert_eq!(s.nodes.iter().filter(|n| n.role == Role::Master).count(), 1);
        }
        assert!(covered.iter().all(|&n| n == 1), "every slot served once in node {v}'s view");
    }

    // The server and the core agree on key slots.
    for key in ["foo", "bar", "{t2}", "user:1000", "{user1000}.following", "", "a{}b", "x{y}z"] {
        let v = c.cmd(0, ["CLUSTER", "KEYSLOT", key]).unwrap();
        assert_eq!(v.as_int(), Some(i64::from(key_slot(key.as_bytes()).get())), "key {key:?}");
    }

    // A master that does not own the key answers MOVED with the owner's address.
    let key = "user:1000";
    let slot = key_slot(key.as_bytes()).get();
    let owner = c.owner_of_key(key.as_bytes()).unwrap();
    let other = (0..3).find(|&m| m != owner).unwrap();
    let reply = c.cmd(other, ["SET", key, "v1"]).unwrap();
    let moved =
        resp::redirect(&reply).unwrap_or_else(|| panic!("expected MOVED, got {}", resp::display(&reply)));
    assert!(!moved.ask);
    assert_eq!(moved.slot, slot);
    assert_eq!(c.index_of_addr(&moved.addr), Some(owner));
    assert_eq!(c.cmd_text(owner, ["SET", key, "v1"]).unwrap(), "OK");
    assert_eq!(c.cmd_text(owner, ["GET", key]).unwrap(), "v1");

    // The owner's replica gets the write (READONLY on one connection).
    let replica = owner + 3;
    let mut rc = c.conn(replica).unwrap();
    rc.cmd_ok(["READONLY"]).unwrap();
    wait_until(Duration::from_secs(5), "the replica to have the key", || {
        Ok(rc.cmd(["GET", key])?.as_str() == Some("v1"))
    })
    .unwrap();
}

#[test]
fn one_master_two_replicas() {
    let c = ClusterBuilder::new().masters(1).replicas(2).label("form-1x2").start().unwrap();
    eprintln!("[timing] 1+2 ready in {:?}", c.timings().ready);
    assert_eq!(c.role(0).unwrap(), Role::Master);
    assert_eq!(c.replicas_of(0).unwrap(), vec![1, 2]);
    let shards = c.shards(2).unwrap();
    assert_eq!(shards.len(), 1);
    assert_eq!(shards[0].slots, vec![(0, 16383)]);
    assert_eq!(shards[0].nodes.len(), 3);
    // One shard: every key is served by node 0, no MOVED anywhere.
    for key in ["a", "b", "c", "user:1"] {
        assert_eq!(c.cmd_text(0, ["SET", key, "x"]).unwrap(), "OK");
    }
    // Without --cluster-databases only DB 0 exists in cluster mode (testbed G4).
    let err = resp::error_text(&c.cmd(0, ["SELECT", "3"]).unwrap()).unwrap();
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn extra_server_flags_reach_every_node() {
    let c = ClusterBuilder::new()
        .masters(3)
        .replicas(0)
        .args(["--cluster-databases", "16", "--maxmemory", "64mb"])
        .label("form-flags")
        .start()
        .unwrap();
    for i in 0..3 {
        let mut conn = c.conn(i).unwrap();
        conn.cmd_ok(["SELECT", "3"]).unwrap();
        let v = conn.cmd(["CONFIG", "GET", "maxmemory"]).unwrap();
        assert_eq!(v.as_array().and_then(|a| a.get(1)).and_then(|v| v.as_int()), Some(64 * 1024 * 1024));
    }
    assert_eq!(c.masters().unwrap(), vec![0, 1, 2]);
}

/// Removes the folders a failed start kept (they hold the logs the error quoted).
fn remove_kept(label: &str) {
    let prefix = format!("{label}-{}-", std::process::id());
    for e in std::fs::read_dir(slotcache_tests::paths::clusters_root()).unwrap().filter_map(Result::ok) {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
}

#[test]
fn failures_to_start_or_form_report_node_logs_and_leave_nothing_running() {
    // A server that refuses its flags: the error quotes its own complaint.
    let err = ClusterBuilder::new()
        .masters(1)
        .replicas(0)
        .arg("--no-such-directive")
        .arg("yes")
        .label("form-badflag")
        .start()
        .unwrap_err();
    assert!(err.message().contains("exited at start"), "{err}");
    assert!(err.message().contains("no-such-directive"), "{err}");

    // A bound too short to form in: the error names the condition and carries each node's log.
    let err = ClusterBuilder::new()
        .masters(2)
        .replicas(0)
        .form_timeout(Duration::from_millis(1))
        .label("form-timeout")
        .start()
        .unwrap_err();
    let msg = err.message();
    assert!(msg.contains("timed out"), "{msg}");
    assert!(msg.contains("--- node 0") && msg.contains("--- node 1"), "{msg}");
    assert!(msg.contains("Ready to accept connections"), "log tails are attached: {msg}");

    let left: Vec<_> = slotcache_tests::procs::servers(None)
        .into_iter()
        .filter(|s| s.label == "form-badflag" || s.label == "form-timeout")
        .filter(|s| s.cluster_dir.to_string_lossy().contains(&format!("-{}-", std::process::id())))
        .collect();
    assert!(left.is_empty(), "servers left running after failed starts: {left:?}");
    remove_kept("form-badflag");
    remove_kept("form-timeout");
}
