//! The standalone harness: a primary and a replica attached by `--replicaof`, as child
//! processes; pause, kill and restart of a node; and nothing left running or on disk after
//! drop.

use std::time::Duration;

use slotcache_tests::{Standalone, procs, topo};

#[test]
fn a_standalone_primary_and_replica_start_replicate_and_are_cleaned_up() {
    let mut s = Standalone::builder().replicas(1).label("harness-sa").start().expect("standalone");
    assert_eq!(s.len(), 2);
    let primary = s.info(0, "replication").expect("INFO");
    assert_eq!(topo::info_field(&primary, "role"), Some("master"));
    assert!(primary.contains(&format!("port={},state=online", s.addr(1).port())), "{primary}");
    let replica = s.info(1, "replication").expect("INFO");
    assert_eq!(topo::info_field(&replica, "role"), Some("slave"));
    assert_eq!(topo::info_field(&replica, "master_port"), Some(s.addr(0).port().to_string().as_str()));
    let cluster = s.info(0, "cluster").expect("INFO cluster");
    assert_eq!(topo::info_field(&cluster, "cluster_enabled"), Some("0"));

    assert_eq!(s.cmd_text(0, ["SET", "k", "v"]).expect("set"), "OK");
    slotcache_tests::wait_until(Duration::from_secs(5), "the replica to have k", || {
        Ok(s.cmd(1, ["GET", "k"])?.as_str() == Some("v"))
    })
    .expect("replicated");

    let pid = s.pid(1).expect("running");
    s.pause(1).expect("pause");
    assert_eq!(procs::state(pid), Some('T'));
    s.resume(1).expect("resume");
    s.kill(1).expect("kill");
    assert!(!procs::alive(pid));
    s.restart(1).expect("restart");
    s.wait_replicas_online(1, Duration::from_secs(30)).expect("the replica syncs again");

    let (dir, pids) = (s.dir().to_path_buf(), [s.pid(0).expect("pid"), s.pid(1).expect("pid")]);
    drop(s);
    assert!(pids.iter().all(|&p| !procs::alive(p)), "servers stopped on drop");
    assert!(!dir.exists(), "folder removed on drop");
}
